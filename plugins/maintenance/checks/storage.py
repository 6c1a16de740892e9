"""Bucket verification (monthly): checksums of the objects under the configured prefixes and the
canary restore test, on any boto3-style S3 client, as object_checksums. No Airflow here: the
operator passes the client and the classifier of its transport errors (hooks/storage.py).
"""

from __future__ import annotations

from typing import Any, Callable

from maintenance.checks.object_checksums import canary_restore_test, checksum_result, select_keys, verify_objects
from maintenance.config import Bucket
from maintenance.results import CheckResult

Classify = Callable[[Exception], tuple[str, str]]     # exception -> (reason, message without secrets)


def target_of(bucket: Bucket) -> str:
    return f"{'r2' if bucket.kind == 'r2' else 's3'}://{bucket.name}"


def storage_failure(check: str, bucket: Bucket, reason: str, text: str, *, runbook: str = "maintenance_monthly",
                    what: str = "") -> CheckResult:
    """A classified storage error as a fail result, naming the connection when a credential is wrong."""
    suffix = f" (check the credentials of connection '{bucket.conn_id}')" if reason == "unauthorized" else ""
    return CheckResult(check=check, status="fail", reason=reason, group="backups", target=target_of(bucket),
                       runbook=runbook, provider="storage", summary=f"{what}{text}{suffix}")


def newest_keys(client: Any, bucket: Bucket, newest: int | None) -> tuple[list[str], bool]:
    """The newest keys under each of the bucket's prefixes (the canary prefix left out);
    (keys, truncated) where truncated says a listing stopped at verify_limit."""
    keys: list[str] = []
    truncated = False
    for prefix in bucket.verify_prefixes or [""]:
        found, cut = select_keys(client, bucket.name, prefix, newest=newest, limit=bucket.verify_limit,
                                 exclude_prefix=bucket.canary_prefix)
        keys += found
        truncated |= cut
    return keys, truncated


def verify_bucket(client: Any, bucket: Bucket, *, classify: Classify) -> list[CheckResult]:
    """storage.<bucket>.checksums and storage.<bucket>.restore_test; a failing step is its own
    fail result, the other still runs."""
    target = target_of(bucket)
    results: list[CheckResult] = []
    check = f"storage.{bucket.name}.checksums"
    try:
        keys, truncated = newest_keys(client, bucket, bucket.verify_newest)
        outcomes = verify_objects(client, bucket.name, keys, concurrency=bucket.verify_concurrency)
        results.append(checksum_result(bucket.name, outcomes, target=target, truncated=truncated))
    except Exception as exc:  # noqa: BLE001 - a transport error becomes a classified result
        results.append(storage_failure(check, bucket, *classify(exc)))
    check = f"storage.{bucket.name}.restore_test"
    if bucket.kind == "r2":
        results.append(CheckResult(check=check, status="skipped", group="backups", target=target,
                                   provider="storage", reason="not_available_on_r2", summary=(
                                       "Cloudflare R2 has no versioning, so there is no previous version to "
                                       "restore: the restore test does not exist there (lock rules protect it instead)")))
    elif bucket.restore_test:
        try:
            results.append(canary_restore_test(client, bucket.name, bucket.canary_prefix, target=target))
        except Exception as exc:  # noqa: BLE001
            results.append(storage_failure(check, bucket, *classify(exc)))
    return results
