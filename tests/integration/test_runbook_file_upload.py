"""runbook_file_upload's steps: S3Hook against moto's server (HTTP), the app's upload endpoint
(a local multipart server with a size limit and a type allow-list); each cause alone named first."""

from __future__ import annotations

import json
from email.parser import BytesParser

import boto3
import pytest

from maintenance.operators import runbook_file_upload as steps_module
from runbook_fixtures import by_check, diagnosis_of, make_config, run_steps
from servers import LocalServer, free_port, json_reply

STEPS = ["check_storage_credentials", "canary_upload", "verify_file_size_limits", "check_mime_validation"]
LIMIT = 4096


class UploadApp:
    """POST /api/upload (multipart, field 'file'): 413 over the limit, 415 for a type not allowed."""

    def __init__(self) -> None:
        self.enforce_size, self.enforce_type = True, True
        self.allowed = {"image/png", "image/jpeg"}

    def __call__(self, request):
        if request.headers.get("Authorization") != "Bearer upload-TOKEN":
            return json_reply({"error": "unauthorized"}, 401)
        head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        parts = [p for p in BytesParser().parsebytes(head + request.body).get_payload() if p.get_param("name", header="content-disposition") == "file"]
        if not parts:
            return json_reply({"error": "no file"}, 400)
        data = parts[0].get_payload(decode=True)
        if self.enforce_size and len(data) > LIMIT:
            return json_reply({"error": "payload too large"}, 413)
        if self.enforce_type and parts[0].get_content_type() not in self.allowed:
            return json_reply({"error": "type not allowed"}, 415)
        return json_reply({"ok": True, "bytes": len(data)}, 201)


@pytest.fixture(scope="module")
def servers(moto_url):
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing-SECRET").create_bucket(Bucket="uploads")
    app = UploadApp()
    with LocalServer(app) as upload:
        yield {"moto": moto_url, "app": app, "upload": upload}


@pytest.fixture
def world(servers, monkeypatch):
    servers["app"].__init__()
    monkeypatch.setenv("AIRFLOW_CONN_S3_UPLOADS", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
        "extra": {"endpoint_url": servers["moto"], "region_name": "us-east-1"}}))
    monkeypatch.setenv("AIRFLOW_CONN_UPLOAD_APP", json.dumps({"conn_type": "http", "password": "upload-TOKEN"}))
    config = make_config(storage={"buckets": [{"name": "uploads", "conn_id": "s3_uploads"}]}, runbooks={"file_upload": {
        "canary_bytes": 2048, "upload_url": f"{servers['upload'].url}/api/upload", "upload_conn_id": "upload_app",
        "max_upload_bytes": LIMIT}})
    return {**servers, "config": config}


def diagnose_world(world, params=None):
    steps = run_steps(steps_module, world["config"], STEPS, params)
    return steps, diagnosis_of("file_upload", steps)


def test_healthy(world):
    steps, diagnosis = diagnose_world(world)
    assert {c: r.status for c, r in by_check(steps).items()} == {
        "storage.uploads.credentials": "ok", "storage.uploads.canary": "ok", "storage.size_limit": "ok",
        "storage.mime": "ok"}
    assert by_check(steps)["storage.size_limit"].evidence == {"limit_bytes": LIMIT, "at_limit": 201, "above_limit": 413}
    assert diagnosis.findings == []
    listed = boto3.client("s3", endpoint_url=world["moto"], region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing-SECRET").list_objects_v2(Bucket="uploads")
    assert listed.get("KeyCount", 0) == 0, "the canary is deleted"


def test_wrong_storage_credentials(world, monkeypatch):
    import requests

    monkeypatch.setenv("AIRFLOW_CONN_S3_UPLOADS", json.dumps({
        "conn_type": "aws", "login": "AKIAWRONGKEY", "password": "wrong-SECRET",
        "extra": {"endpoint_url": world["moto"], "region_name": "us-east-1"}}))
    # moto's server checks keys against its IAM only with authentication on (its /moto-api/reset-auth)
    requests.post(f"{world['moto']}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
    try:
        steps, diagnosis = diagnose_world(world)
    finally:
        requests.post(f"{world['moto']}/moto-api/reset-auth", data=b"inf", timeout=5)
    result = by_check(steps)["storage.uploads.credentials"]
    assert (result.status, result.reason) == ("fail", "storage_credentials"), result.summary
    assert "(HTTP 403)" in result.summary      # HEAD answers carry no error code
    assert "InvalidAccessKeyId" in by_check(steps)["storage.uploads.canary"].summary
    assert diagnosis.root.cause.reason == "storage_credentials" and "wrong-SECRET" not in repr(steps)
    assert by_check(steps)["storage.uploads.canary"].reason == "storage_write_denied"


def test_missing_bucket(world):
    config = make_config(storage={"buckets": [{"name": "no-such-bucket", "conn_id": "s3_uploads"}]})
    steps = run_steps(steps_module, config, ["check_storage_credentials"])
    assert by_check(steps)["storage.no-such-bucket.credentials"].reason == "bucket_missing"


def test_oversize_upload_accepted(world):
    world["app"].enforce_size = False
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "size_limit_not_enforced"
    assert f"{LIMIT + 1} bytes (over the {LIMIT}-byte limit) was accepted (HTTP 201)" in diagnosis.root.result.summary
    assert diagnosis.contacts[0].name == "Vercel Support"


def test_disallowed_mime_type_accepted(world):
    world["app"].enforce_type = False
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "mime_not_validated"
    assert "application/x-msdownload was accepted" in diagnosis.root.result.summary


def test_limit_too_low_and_endpoint_down(world):
    world["app"].allowed = set()
    steps, diagnosis = diagnose_world(world)
    assert by_check(steps)["storage.size_limit"].reason == "limit_too_low"
    config = world["config"].model_copy(update={"runbooks": world["config"].runbooks.model_copy(update={
        "file_upload": world["config"].runbooks.file_upload.model_copy(update={
            "upload_url": f"http://127.0.0.1:{free_port()}/api/upload"})})})
    steps = run_steps(steps_module, config, ["verify_file_size_limits", "check_mime_validation"])
    assert {r.reason for r in by_check(steps).values()} == {"upload_endpoint_down"}


def test_named_upload(world):
    s3 = boto3.client("s3", endpoint_url=world["moto"], region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing-SECRET")
    s3.put_object(Bucket="uploads", Key="u/photo.png", Body=b"png", ContentType="image/png")
    steps = run_steps(steps_module, world["config"], ["check_mime_validation"], {"upload_key": "u/photo.png"})
    assert "3 bytes, image/png" in by_check(steps)["storage.upload"].summary
    steps = run_steps(steps_module, world["config"], ["check_mime_validation"], {"upload_key": "u/missing.png"})
    assert by_check(steps)["storage.upload"].reason == "upload_missing"
    s3.delete_object(Bucket="uploads", Key="u/photo.png")
