"""runbook_file_upload: storage credentials (HeadBucket), a canary put/get/delete, the app's size
limit and MIME validation through its upload endpoint, one named upload, Sentry upload errors."""

from __future__ import annotations

from typing import Any

from maintenance.checks.diagnosis import Cause
from maintenance.results import CheckResult

GROUP, RUNBOOK = "storage", "runbook_file_upload"
CONTACTS = ("storage", "vercel")

CAUSES = {c.reason: c for c in (
    Cause("storage_credentials", "The storage credentials are refused", 20,
          "AWS IAM (user, key, bucket policy) or Cloudflare R2 > Manage API Tokens: fix or rotate the key, update "
          "the Airflow connection and the app's variables on Vercel, redeploy", "storage"),
    Cause("bucket_missing", "The upload bucket does not exist at this endpoint", 22,
          "check the bucket name, the endpoint (R2 account id) and the region (auto for R2)", "storage"),
    Cause("storage_write_denied", "The credentials cannot write to the bucket", 25,
          "grant s3:PutObject / R2 Object Read & Write to the key uploads use", "storage"),
    Cause("storage_unreachable", "The storage endpoint does not answer", 30,
          "check the provider's status page and the endpoint_url in the connection", "storage"),
    Cause("canary_mismatch", "An object read back differs from what was written", 35,
          "open a support case with the provider with the canary's key and checksums", "storage"),
    Cause("size_limit_not_enforced", "Uploads above the size limit are accepted", 40,
          "enforce the limit in the upload route (and content-length-range on presigned URLs); redeploy", "vercel"),
    Cause("mime_not_validated", "A disallowed file type is accepted", 40,
          "validate the type server-side (MIME and magic bytes) in the upload route; redeploy", "vercel"),
    Cause("limit_too_low", "Uploads at the size limit are rejected", 45,
          "the path uploads take has a lower limit (Vercel Functions reject bodies over 4.5 MB): send large files "
          "straight to the bucket with presigned URLs, or align the form's limit", "vercel"),
    Cause("upload_endpoint_down", "The app's upload endpoint fails", 50,
          "Vercel > the deployment > Functions logs for the upload route; Sentry for the error", "vercel"),
    Cause("upload_missing", "The upload named is not in the bucket", 65,
          "the upload never reached storage: read the upload route's logs at that time", "vercel"),
    Cause("app_errors", "The app reports upload errors in Sentry", 85,
          "open the Sentry issues below for the exact error", "sentry"),
)}

ACCEPTED = range(200, 300)


def _result(check: str, status: str, summary: str, reason: str | None = None, provider: str = "storage",
            **kw: Any) -> CheckResult:
    return CheckResult(check=f"storage.{check}", status=status, summary=summary, reason=reason, group=GROUP,
                       runbook=RUNBOOK, provider=provider, **kw)


def storage_reason(error_reason: str, code: str) -> str:
    """Cause of a botocore failure from hooks.storage.client_error()."""
    if code.startswith(("NoSuchBucket", "404")) or "(HTTP 404)" in code:
        return "bucket_missing"
    if error_reason == "unauthorized":
        return "storage_credentials"
    if error_reason in ("refused", "timeout", "dns", "connection_error", "tls", "http_5xx"):
        return "storage_unreachable"
    return "storage_credentials" if "403" in code else "storage_unreachable"


def head_bucket(bucket: str, error: tuple[str, str] | None) -> CheckResult:
    if error is None:
        return _result(f"{bucket}.credentials", "ok", f"HeadBucket {bucket}: reachable with these credentials",
                       target=bucket)
    reason = storage_reason(*error)
    return _result(f"{bucket}.credentials", "fail", f"HeadBucket {bucket}: {error[1]}", reason, target=bucket,
                   evidence={"error": error[1], "class": error[0]})


def canary(bucket: str, key: str, size: int, stage_errors: dict[str, tuple[str, str]], matched: bool | None,
           ms: float) -> CheckResult:
    evidence = {"key": key, "bytes": size, **{f"{k}_error": v[1] for k, v in stage_errors.items()}}
    metrics = {"round_trip_ms": round(ms, 1)}
    if "put" in stage_errors:
        reason = storage_reason(*stage_errors["put"])
        reason = "storage_write_denied" if reason == "storage_credentials" else reason
        return _result(f"{bucket}.canary", "fail", f"canary put of {size} bytes refused: {stage_errors['put'][1]}",
                       reason, target=bucket, evidence=evidence, metrics=metrics)
    if "get" in stage_errors:
        return _result(f"{bucket}.canary", "fail", f"canary written but not read back: {stage_errors['get'][1]}",
                       storage_reason(*stage_errors["get"]), target=bucket, evidence=evidence, metrics=metrics)
    if matched is False:
        return _result(f"{bucket}.canary", "fail", "canary read back with different content", "canary_mismatch",
                       target=bucket, evidence=evidence, metrics=metrics)
    if "delete" in stage_errors:
        return _result(f"{bucket}.canary", "warn", f"canary written and read, not deleted: {stage_errors['delete'][1]}",
                       "storage_write_denied", target=bucket, evidence=evidence, metrics=metrics)
    return _result(f"{bucket}.canary", "ok", f"canary put/get/delete of {size} bytes in {ms:.0f} ms", target=bucket,
                   evidence=evidence, metrics=metrics)


def size_limit(limit: int, at_limit: tuple[int | None, str | None], above: tuple[int | None, str | None],
               url: str) -> CheckResult:
    """(HTTP status, error) of an upload of exactly `limit` bytes and of limit + 1."""
    evidence = {"limit_bytes": limit, "at_limit": at_limit[0] or at_limit[1], "above_limit": above[0] or above[1]}
    down = [x for x in (at_limit, above) if x[1] or (x[0] or 0) >= 500]
    if len(down) == 2:
        return _result("size_limit", "fail", f"the upload endpoint fails: {at_limit[1] or f'HTTP {at_limit[0]}'}",
                       "upload_endpoint_down", "vercel", evidence=evidence, target=url)
    if above[0] in ACCEPTED:
        return _result("size_limit", "fail", f"an upload of {limit + 1} bytes (over the {limit}-byte limit) was "
                       f"accepted (HTTP {above[0]})", "size_limit_not_enforced", "vercel", evidence=evidence, target=url)
    if at_limit[0] not in ACCEPTED:
        return _result("size_limit", "fail", f"an upload of exactly {limit} bytes was rejected "
                       f"({at_limit[1] or f'HTTP {at_limit[0]}'})", "limit_too_low", "vercel", evidence=evidence,
                       target=url)
    return _result("size_limit", "ok", f"{limit} bytes accepted, {limit + 1} rejected (HTTP {above[0]})", None,
                   "vercel", evidence=evidence, target=url)


def mime_validation(kind: str, answer: tuple[int | None, str | None], url: str) -> CheckResult:
    evidence = {"type": kind, "answer": answer[0] or answer[1]}
    if answer[1] or (answer[0] or 0) >= 500:
        return _result("mime", "fail", f"the upload endpoint fails: {answer[1] or f'HTTP {answer[0]}'}",
                       "upload_endpoint_down", "vercel", evidence=evidence, target=url)
    if answer[0] in ACCEPTED:
        return _result("mime", "fail", f"an upload of type {kind} was accepted (HTTP {answer[0]})",
                       "mime_not_validated", "vercel", evidence=evidence, target=url)
    return _result("mime", "ok", f"type {kind} rejected (HTTP {answer[0]})", None, "vercel", evidence=evidence,
                   target=url)


def named_upload(bucket: str, key: str, head: dict[str, Any] | None, error: tuple[str, str] | None) -> CheckResult:
    if head is not None:
        return _result("upload", "ok", f"{key} is in {bucket}: {head.get('ContentLength')} bytes, "
                       f"{head.get('ContentType')}", target=f"{bucket}/{key}",
                       evidence={k: str(head.get(k)) for k in ("ContentLength", "ContentType", "LastModified")})
    assert error is not None
    if "404" in error[1] or "Not Found" in error[1]:
        return _result("upload", "warn", f"{key} is not in {bucket}", "upload_missing", target=f"{bucket}/{key}",
                       evidence={"error": error[1]})
    return _result("upload", "fail", f"HeadObject {bucket}/{key}: {error[1]}", storage_reason(*error),
                   target=f"{bucket}/{key}", evidence={"error": error[1]})
