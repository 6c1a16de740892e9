"""The monthly restore test of an Atlas snapshot: take the restore job's archive, verify it, and
(when a scratch database is configured) restore it there and compare the counts. No Airflow
here: the transport comes in as functions (the hook's streaming download, the scratch restore).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from typing import Any, Callable, Iterable

from maintenance.checks.backups import failed_call, verify_archive
from maintenance.hooks.http_policy import ProviderError
from maintenance.results import CheckResult

RUNBOOK = "maintenance_monthly"
ARCHIVE, COUNTS = "atlas.restore_archive", "atlas.restore_counts"


def result(check: str, status: str, summary: str, *, target: str, reason: str | None = None) -> CheckResult:
    return CheckResult(check=check, status=status, summary=summary, reason=reason, group="backups",  # type: ignore[arg-type]
                       target=target, runbook=RUNBOOK, provider="atlas")


def archive_and_restore(job: dict[str, Any], *, download: Callable[[str, str], int],
                        expected_collections: Iterable[str], target: str,
                        restore: Callable[[str, str], CheckResult] | None = None) -> list[CheckResult]:
    """Download the restore job's archive (download(url, path) -> bytes), verify it, and when
    `restore` is given and the archive is sound, restore(archive, workdir) -> the counts result.
    The archive lives in a private temporary directory, removed afterwards."""
    urls = [u for u in job.get("deliveryUrl") or [] if isinstance(u, str)]
    if not urls:
        state = ", ".join(f for f in ("failed", "cancelled", "expired") if job.get(f)) or "no delivery URL"
        return [result(ARCHIVE, "fail", f"restore job {job.get('id')} ended without an archive ({state})",
                       target=target, reason="restore_failed")]
    workdir = tempfile.mkdtemp(prefix="atlas-restore-")
    try:
        path = os.path.join(workdir, "snapshot.tar.gz")
        try:
            download(urls[0], path)
        except ProviderError as exc:
            return [failed_call(ARCHIVE, exc, target=target, runbook=RUNBOOK)]
        results = [verify_archive(path, expected_collections, target=target)]
        if restore is not None and results[0].status != "fail":
            results.append(restore(path, workdir))
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def unpack_dump(archive: str, workdir: str) -> tuple[str, bool] | None:
    """Extract a mongodump archive; (the directory holding one folder per database, gzipped
    .bson?) as mongorestore wants it, or None when it holds no .bson file."""
    extracted = os.path.join(workdir, "extracted")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(extracted, filter="data")
    bson = next((os.path.join(d, f) for d, _, files in os.walk(extracted) for f in files
                 if f.endswith((".bson", ".bson.gz"))), None)
    if bson is None:
        return None
    return os.path.dirname(os.path.dirname(bson)), bson.endswith(".gz")
