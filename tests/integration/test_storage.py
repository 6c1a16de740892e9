"""S3 through S3Hook against moto's server over HTTP (not in-process mocking), and R2 through
Cloudflare's REST API on a local server: bucket settings, checksum verification, restore test."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from atlas_server import CloudflareServer
from maintenance.checks.object_checksums import canary_restore_test, verify_object, verify_objects
from maintenance.config import Bucket
from maintenance.operators.backups import bucket_settings, storage_verification

MB = 1024 * 1024


@pytest.fixture
def s3(moto_url, monkeypatch):
    """A plain boto3 client for arranging buckets, and the `s3_test` Airflow connection to moto."""
    monkeypatch.setenv("AIRFLOW_CONN_S3_TEST", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
        "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}}))
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-SECRET")


def new_bucket(s3, name, *, versioning=False):
    s3.create_bucket(Bucket=name)
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def corrupt_stored_object(bucket: str, key: str) -> None:
    """Bit rot in the store: the bytes change, the stored ETag and checksum do not."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
    stored.etag  # noqa: B018 - computed and cached from the original bytes
    data = bytearray(stored.value)
    data[len(data) // 2] ^= 0xFF
    stored.value = bytes(data)


def by_check(results):
    return {r.check: r for r in results}


def test_versioning_off_and_replication_missing(s3):
    name = new_bucket(s3, "bk-plain")
    r = by_check(bucket_settings(Bucket(name=name, conn_id="s3_test", require_replication=True)))
    assert r[f"storage.{name}.versioning"].status == "fail"
    assert "off (never enabled)" in r[f"storage.{name}.versioning"].summary
    assert r[f"storage.{name}.replication"].status == "fail"
    assert r[f"storage.{name}.replication"].reason == "replication_missing"
    assert r[f"storage.{name}.lifecycle"].status == "fail"
    assert r[f"storage.{name}.public_access"].status == "fail"


def test_versioning_on_with_replication_lifecycle_and_public_access_block(s3):
    name = new_bucket(s3, "bk-good", versioning=True)
    new_bucket(s3, "bk-dr", versioning=True)
    s3.put_bucket_replication(Bucket=name, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [{"ID": "dr", "Status": "Enabled", "Prefix": "", "Destination": {"Bucket": "arn:aws:s3:::bk-dr"}}]})
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
        {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})
    s3.put_object(Bucket=name, Key="backups/a", Body=b"a")
    r = by_check(bucket_settings(Bucket(name=name, conn_id="s3_test", require_replication=True)))
    assert {c: x.status for c, x in r.items()} == {f"storage.{name}.{k}": "ok" for k in
                                                   ("versioning", "replication", "lifecycle", "public_access")}
    assert "arn:aws:s3:::bk-dr" in r[f"storage.{name}.replication"].summary


def test_missing_connection_is_skipped_with_how_to(s3):
    r = bucket_settings(Bucket(name="whatever", conn_id="no_such_conn"))
    assert [x.status for x in r] == ["skipped"]
    assert "add the aws connection 'no_such_conn'" in r[0].summary


def test_checksums_verified_by_each_method(s3):
    name = new_bucket(s3, "bk-sums")
    body = os.urandom(3 * MB)
    s3.put_object(Bucket=name, Key="backups/sha", Body=body, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=name, Key="backups/md5", Body=body)
    upload = s3.create_multipart_upload(Bucket=name, Key="backups/multi")
    chunks = [os.urandom(5 * MB), os.urandom(5 * MB), os.urandom(123)]
    parts = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=name, Key="backups/multi", UploadId=upload["UploadId"],
                                                      PartNumber=i, Body=c)["ETag"]} for i, c in enumerate(chunks, 1)]
    s3.complete_multipart_upload(Bucket=name, Key="backups/multi", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    # parts of unequal sizes: the part size from part 1 does not fit, the exact sizes are read
    upload = s3.create_multipart_upload(Bucket=name, Key="backups/uneven")
    chunks = [os.urandom(6 * MB), os.urandom(5 * MB), os.urandom(7)]
    parts = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=name, Key="backups/uneven", UploadId=upload["UploadId"],
                                                      PartNumber=i, Body=c)["ETag"]} for i, c in enumerate(chunks, 1)]
    s3.complete_multipart_upload(Bucket=name, Key="backups/uneven", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=name, Key="backups/multi")["ETag"].endswith('-3"')

    outcomes = {o.key: o for o in verify_objects(s3, name, ["backups/sha", "backups/md5", "backups/multi",
                                                            "backups/uneven"], concurrency=4, chunk=256 * 1024)}
    assert {k: (o.status, o.method) for k, o in outcomes.items()} == {
        "backups/sha": ("verified", "sha256"), "backups/md5": ("verified", "md5"),
        "backups/multi": ("verified", "md5-multipart"), "backups/uneven": ("verified", "md5-multipart")}
    assert outcomes["backups/multi"].size == 10 * MB + 123


def test_objects_whose_content_no_longer_matches_are_named(s3):
    name = new_bucket(s3, "bk-rot")
    for i in range(6):
        s3.put_object(Bucket=name, Key=f"backups/ok{i}", Body=os.urandom(10_000))
    s3.put_object(Bucket=name, Key="backups/rotten", Body=os.urandom(200_000))
    s3.put_object(Bucket=name, Key="backups/rotten-sha", Body=os.urandom(200_000), ChecksumAlgorithm="SHA256")
    upload = s3.create_multipart_upload(Bucket=name, Key="backups/rotten-multi")
    parts = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=name, Key="backups/rotten-multi",
                                                      UploadId=upload["UploadId"], PartNumber=i, Body=c)["ETag"]}
             for i, c in enumerate([os.urandom(5 * MB), os.urandom(1000)], 1)]
    s3.complete_multipart_upload(Bucket=name, Key="backups/rotten-multi", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    for key in ("backups/rotten", "backups/rotten-sha", "backups/rotten-multi"):
        corrupt_stored_object(name, key)
    s3.put_object(Bucket=name, Key="elsewhere/not-checked", Body=b"x")

    results = by_check(storage_verification(Bucket(name=name, conn_id="s3_test", verify_prefixes=["backups/"],
                                                   restore_test=False)))
    sums = results[f"storage.{name}.checksums"]
    assert sums.status == "fail" and sums.reason == "checksum_mismatch"
    assert sums.metrics["objects"] == 9 and sums.metrics["verified"] == 6 and sums.metrics["mismatch"] == 3
    assert {line.split(":")[0] for line in sums.evidence["mismatch"]} == {
        "backups/rotten", "backups/rotten-sha", "backups/rotten-multi"}
    assert f"storage.{name}.restore_test" not in results


def test_newest_n_and_limit(s3):
    name = new_bucket(s3, "bk-newest")
    for i in range(5):
        s3.put_object(Bucket=name, Key=f"backups/{i}", Body=b"x" * i)
    result = by_check(storage_verification(Bucket(name=name, conn_id="s3_test", verify_limit=3,
                                                  restore_test=False)))[f"storage.{name}.checksums"]
    assert result.status == "ok" and result.metrics["objects"] == 3 and "verify_limit" in result.summary


def test_restore_previous_version(s3):
    name = new_bucket(s3, "bk-canary", versioning=True)
    result = canary_restore_test(s3, name, "maintenance-canary/", target=f"s3://{name}")
    assert result.status == "ok", result.summary
    assert "restored from its previous version" in result.summary
    versions = s3.list_object_versions(Bucket=name, Prefix="maintenance-canary/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers"), "the canary is cleaned up"


def test_restore_test_fails_without_versioning(s3):
    name = new_bucket(s3, "bk-canary-off")
    results = by_check(storage_verification(Bucket(name=name, conn_id="s3_test")))
    restore = results[f"storage.{name}.restore_test"]
    assert restore.status == "fail" and restore.reason == "versioning_off"
    assert "no previous version to restore" in restore.summary
    assert not s3.list_objects_v2(Bucket=name).get("Contents"), "nothing written when the test cannot work"


@pytest.mark.parametrize("size", [0, 5, 3 * 4096, 3 * 4096 + 1], ids=["empty", "short", "chunk-multiple", "one-past"])
def test_sha256_verified_whatever_the_length_against_the_read_chunk(s3, size):
    """The verifier's streamed SHA-256 (read in 4 KiB chunks here) matches the checksum the
    uploader declared, for an empty body, a short one and bodies ending on and just past a chunk."""
    name = new_bucket(s3, f"bk-edge-{size}")
    s3.put_object(Bucket=name, Key="k", Body=os.urandom(size), ChecksumAlgorithm="SHA256")
    outcome = verify_object(s3, name, "k", chunk=4096)
    assert (outcome.status, outcome.method, outcome.size) == ("verified", "sha256", size), outcome.detail


# -- R2 -----------------------------------------------------------------------------------------------
@pytest.fixture
def cloudflare(monkeypatch):
    with CloudflareServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_API", server.connection_json())
        yield server


def test_r2_lock_rules_and_lifecycle(cloudflare):
    cloudflare.locks["r2-backups"] = [{"id": "keep", "enabled": True, "prefix": "backups/",
                                       "condition": {"type": "Age", "maxAgeSeconds": 2592000}}]
    cloudflare.lifecycles["r2-backups"] = [{"id": "expire", "enabled": True}]
    r = by_check(bucket_settings(Bucket(name="r2-backups", conn_id="r2_backups", kind="r2")))
    assert r["storage.r2-backups.versioning"].status == "skipped"
    assert "R2 has no S3 versioning" in r["storage.r2-backups.versioning"].summary
    assert "R2 has no S3 replication" in r["storage.r2-backups.replication"].summary
    assert r["storage.r2-backups.lock"].status == "ok" and r["storage.r2-backups.lifecycle"].status == "ok"

    r = by_check(bucket_settings(Bucket(name="r2-open", conn_id="r2_backups", kind="r2")))
    assert r["storage.r2-open.lock"].status == "fail" and r["storage.r2-open.lock"].reason == "lock_missing"


def test_r2_wrong_token_names_the_connection(cloudflare, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_API", cloudflare.connection_json(token="wrong"))
    [result] = bucket_settings(Bucket(name="r2-backups", conn_id="r2_backups", kind="r2"))
    assert result.status == "fail" and result.reason == "unauthorized"
    assert "connection 'cloudflare_api'" in result.summary and "cf-token-SECRET" not in result.summary
    assert "Authentication error (code 10000)" in result.summary      # Cloudflare's errors[] message


def test_r2_error_answers_show_cloudflares_errors_messages(cloudflare):
    cloudflare.missing.add("r2-gone")
    [result] = bucket_settings(Bucket(name="r2-gone", conn_id="r2_backups", kind="r2"))
    assert (result.status, result.reason) == ("fail", "http_4xx")
    assert "HTTP 404: The specified bucket does not exist. (code 10006)" in result.summary


def test_r2_restore_test_does_not_exist(s3):
    name = new_bucket(s3, "bk-r2-like")
    s3.put_object(Bucket=name, Key="a", Body=b"a")
    results = by_check(storage_verification(Bucket(name=name, conn_id="s3_test", kind="r2")))
    assert results[f"storage.{name}.checksums"].status == "ok"
    assert results[f"storage.{name}.restore_test"].status == "skipped"
    assert "R2 has no versioning" in results[f"storage.{name}.restore_test"].summary
