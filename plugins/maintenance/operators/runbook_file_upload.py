"""runbook_file_upload's steps: S3Hook on the configured buckets (S3, R2, MinIO), the app's upload
endpoint through hooks/public.py (the HTTP policy), Sentry. Params (manual runs): upload_key (an
object to look at)."""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from maintenance.operators.base import connection_or_none
from maintenance.operators.runbook_payments import sentry_step

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult

HOW = "add storage.buckets (and runbooks.file_upload.buckets to choose the upload bucket)"


def _buckets(config: MaintenanceConfig):
    wanted = config.runbooks.file_upload.buckets
    buckets = config.storage.buckets if config.storage else []
    return [b for b in buckets if not wanted or b.name in wanted]


def check_storage_credentials(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import file_upload as fu
    from maintenance.results import not_configured

    from maintenance.hooks.storage import client_error, s3_client

    results = []
    for bucket in _buckets(config):
        if connection_or_none(bucket.conn_id) is None:
            results.append(not_configured(f"storage.{bucket.name}.credentials", fu.GROUP,
                                          f"set Airflow connection '{bucket.conn_id}'"))
            continue
        try:
            s3_client(bucket.conn_id, kind=bucket.kind).head_bucket(Bucket=bucket.name)
            results.append(fu.head_bucket(bucket.name, None))
        except Exception as exc:  # noqa: BLE001 - botocore errors are classified
            results.append(fu.head_bucket(bucket.name, client_error(exc)))
    return results or [not_configured("storage.credentials", fu.GROUP, HOW)]


def canary_upload(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import file_upload as fu
    from maintenance.results import not_configured

    from maintenance.hooks.storage import client_error, s3_client

    buckets = [b for b in _buckets(config) if connection_or_none(b.conn_id) is not None]
    if not buckets:
        return [not_configured("storage.canary", fu.GROUP, HOW)]
    settings = config.runbooks.file_upload
    bucket = buckets[0]
    client = s3_client(bucket.conn_id, kind=bucket.kind)
    data = os.urandom(settings.canary_bytes)
    key = f"{settings.canary_prefix}{uuid.uuid4().hex}.bin"
    errors: dict[str, tuple[str, str]] = {}
    matched = None
    start = time.monotonic()
    try:
        client.put_object(Bucket=bucket.name, Key=key, Body=data, ContentType="application/octet-stream")
    except Exception as exc:  # noqa: BLE001
        errors["put"] = client_error(exc)
    if not errors:
        try:
            body = client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
            matched = body == data
        except Exception as exc:  # noqa: BLE001
            errors["get"] = client_error(exc)
        try:
            client.delete_object(Bucket=bucket.name, Key=key)
        except Exception as exc:  # noqa: BLE001
            errors["delete"] = client_error(exc)
    return [fu.canary(bucket.name, key, len(data), errors, matched, (time.monotonic() - start) * 1000)]


def _upload(config: MaintenanceConfig, size: int, content_type: str) -> tuple[int | None, str | None]:
    """POST one multipart file to the app's upload endpoint: (HTTP status, error)."""
    from maintenance.hooks import public
    from maintenance.hooks.http_policy import RetryPolicy

    settings = config.runbooks.file_upload
    extension = content_type.split("/")[-1].replace("x-", "")[:8]
    files = {settings.upload_field: (f"maintenance-probe.{extension}", b"\0" * size, content_type)}
    # one try: a retried upload would store twice
    answer = public.probe("POST", settings.upload_url, files=files, bearer_conn_id=settings.upload_conn_id,
                          policy=RetryPolicy(timeout=30, attempts=1))
    return (answer.status, None) if answer.status is not None else (None, answer.error)


def verify_file_size_limits(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import file_upload as fu
    from maintenance.results import not_configured

    settings = config.runbooks.file_upload
    if not settings.upload_url or not settings.max_upload_bytes:
        return [not_configured("storage.size_limit", fu.GROUP,
                               "set runbooks.file_upload.upload_url and max_upload_bytes")]
    limit = settings.max_upload_bytes
    return [fu.size_limit(limit, _upload(config, limit, settings.allowed_type),
                          _upload(config, limit + 1, settings.allowed_type), settings.upload_url)]


def check_mime_validation(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import file_upload as fu
    from maintenance.results import not_configured

    from maintenance.hooks.storage import client_error, s3_client

    settings = config.runbooks.file_upload
    results = []
    if settings.upload_url:
        results.append(fu.mime_validation(settings.disallowed_type, _upload(config, 1024, settings.disallowed_type),
                                          settings.upload_url))
    key = ((context.get("params") or {}).get("upload_key") or "").strip()
    buckets = [b for b in _buckets(config) if connection_or_none(b.conn_id) is not None]
    if key and buckets:
        bucket = buckets[0]
        try:
            head = s3_client(bucket.conn_id, kind=bucket.kind).head_object(Bucket=bucket.name, Key=key)
            results.append(fu.named_upload(bucket.name, key, head, None))
        except Exception as exc:  # noqa: BLE001
            results.append(fu.named_upload(bucket.name, key, None, client_error(exc)))
    return results or [not_configured("storage.mime", fu.GROUP, "set runbooks.file_upload.upload_url")]


def review_upload_logs(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import file_upload as fu
    from maintenance.results import not_configured

    return sentry_step(config, config.runbooks.file_upload.sentry_query, "storage.sentry_errors", fu.GROUP) or \
        [not_configured("storage.sentry_errors", fu.GROUP, "add a sentry: section and the sentry_api connection")]
