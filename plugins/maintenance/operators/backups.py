"""Backup operators: Atlas freshness (daily), backup status (weekly), backup verification
(monthly), and manual_backup's take / wait (deferrable) / report.

Each is hook -> check -> the base's store/alert path. A provider that is not configured is a
skipped result saying how to configure it; a ProviderError is a fail result with its reason.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from maintenance.operators.base import MaintenanceCheckOperator, enqueue_report_once

if TYPE_CHECKING:   # parsing a DAG file imports this module: config, results and checks load when a task runs
    from maintenance.config import Atlas, Bucket, MaintenanceConfig
    from maintenance.results import CheckResult

ATLAS_HOW = "add an atlas: section to the maintenance config and the Airflow connection '{conn}' " \
            "(http: login = public key, password = private key; extra: project_id, cluster)"
STORAGE_HOW = "add storage: buckets: to the maintenance config, each with its aws connection"


def _not_found() -> type[Exception]:
    from airflow.sdk.exceptions import AirflowNotFoundException
    return AirflowNotFoundException


def _atlas(config: MaintenanceConfig, check: str) -> tuple[Atlas | None, list[CheckResult]]:
    from maintenance.results import not_configured
    atlas = config.atlas
    if atlas is None or not atlas.enabled:
        return None, [not_configured(check, "backups", ATLAS_HOW.format(conn="atlas_api"))]
    return atlas, []


def _atlas_call(check: str, atlas: Atlas, call: Callable[[], list[CheckResult]], runbook: str) -> list[CheckResult]:
    """Run Atlas calls; a missing connection is skipped, a ProviderError is a fail result."""
    from maintenance.results import not_configured
    from maintenance.checks.backups import failed_call
    from maintenance.hooks.http_policy import ProviderError

    try:
        return call()
    except _not_found():
        return [not_configured(check, "backups", f"connection '{atlas.conn_id}' is missing: "
                               + ATLAS_HOW.format(conn=atlas.conn_id))]
    except ProviderError as exc:
        return [failed_call(check, exc, target=f"atlas:{atlas.conn_id}", runbook=runbook)]


class _PreparedResults(MaintenanceCheckOperator):
    """A check operator whose results are computed around a deferral, then concluded by the base."""

    def _finish(self, context: Any, results: list[CheckResult], *, fail_on_fail: bool = False) -> Any:
        from maintenance.alerting import ChecksFailed
        from maintenance.config import get_config

        outcome = self.conclude(context, get_config(), results)
        failing = [r for r in results if r.failed]
        if fail_on_fail and failing:
            # manual_backup: a failed snapshot fails the task at once, whatever the alert threshold.
            raise ChecksFailed(failing)
        return outcome


# -- daily -----------------------------------------------------------------------------------------
class AtlasFreshnessOperator(MaintenanceCheckOperator):
    """Newest completed snapshot at most max_snapshot_age_hours old; no failed snapshot since the last run."""

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.results import CheckResult, utcnow
        from maintenance.checks.backups import since_default, snapshot_freshness
        from maintenance.hooks.atlas import AtlasHook

        atlas, skipped = _atlas(config, "atlas.snapshot_age")
        if atlas is None:
            return skipped
        now = utcnow()
        previous = context.get("prev_start_date_success")
        since = since_default(now, previous if isinstance(previous, datetime) else None)

        def call() -> list[CheckResult]:
            hook = AtlasHook(atlas.conn_id)
            return snapshot_freshness(hook.snapshots(), now=now, max_age_hours=atlas.max_snapshot_age_hours,
                                      since=since, target=f"atlas:{hook.cluster}", runbook="maintenance_daily")
        return _atlas_call("atlas.snapshot_age", atlas, call, "maintenance_daily")


# -- weekly ----------------------------------------------------------------------------------------
def _previous_metrics(config: MaintenanceConfig, check: str) -> dict[str, Any] | None:
    from maintenance.hooks.results_db import results_store

    row = results_store(config.results.conn_id).latest(check, statuses=("ok", "warn"))
    return row["metrics"] if row else None


def bucket_settings(bucket: Bucket) -> list[CheckResult]:
    """The weekly settings of one bucket: R2 through Cloudflare's API, S3 through the S3 API."""
    from maintenance.results import not_configured
    from maintenance.checks.backups import failed_call, r2_bucket_settings, s3_bucket_settings
    from maintenance.checks.storage import newest_keys, storage_failure

    if bucket.kind == "r2":
        from maintenance.hooks.cloudflare import CloudflareHook
        from maintenance.hooks.http_policy import ProviderError

        try:
            hook = CloudflareHook(bucket.cloudflare_conn_id)
            lock, lifecycle = hook.lock_rules(bucket.name), hook.lifecycle_rules(bucket.name)
        except _not_found():
            return [not_configured(f"storage.{bucket.name}.lock", "backups",
                                   f"R2 lock rules and lifecycle are read through Cloudflare's REST API: add the "
                                   f"connection '{bucket.cloudflare_conn_id}' (http: password = API token with "
                                   "R2 read; extra: account_id)")]
        except ProviderError as exc:
            return [failed_call(f"storage.{bucket.name}.lock", exc, target=f"r2://{bucket.name}",
                                runbook="maintenance_weekly", provider="storage")]
        return r2_bucket_settings(bucket.name, lock, lifecycle, require_replication=bucket.require_replication,
                                  require_lifecycle=bucket.require_lifecycle)

    from maintenance.hooks.storage import bucket_facts, client_error, replication_statuses, s3_client

    check = f"storage.{bucket.name}.settings"
    try:
        client = s3_client(bucket.conn_id)
        facts = bucket_facts(client, bucket.name)
        if facts["replication"]:
            # Health: the replication status of the newest objects (FAILED means it is broken).
            keys, _ = newest_keys(client, bucket, newest=5)
            facts["replication_statuses"] = replication_statuses(client, bucket.name, keys[:10])
    except _not_found():
        return [not_configured(check, "backups", f"add the aws connection '{bucket.conn_id}' "
                               "(extra endpoint_url for an S3-compatible store)")]
    except Exception as exc:  # noqa: BLE001 - botocore errors become a classified result
        return [storage_failure(check, bucket, *client_error(exc), runbook="maintenance_weekly",
                                what="reading the bucket settings failed: ")]
    return s3_bucket_settings(bucket.name, facts, require_replication=bucket.require_replication,
                              require_lifecycle=bucket.require_lifecycle)


class BackupStatusOperator(MaintenanceCheckOperator):
    """Weekly: Atlas policy (retention, PITR), snapshot count/size trend; every bucket's settings."""

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.results import CheckResult, not_configured
        from maintenance.checks.backups import backup_policy, snapshot_inventory
        from maintenance.hooks.atlas import AtlasHook

        atlas, results = _atlas(config, "atlas.retention")
        if atlas is not None:
            def call() -> list[CheckResult]:
                hook = AtlasHook(atlas.conn_id)
                target = f"atlas:{hook.cluster}"
                out = backup_policy(hook.schedule(), hook.cluster_description(),
                                    min_retention_days=atlas.min_retention_days, require_pitr=atlas.require_pitr,
                                    target=target, runbook="maintenance_weekly")
                out.append(snapshot_inventory(hook.snapshots(), _previous_metrics(config, "atlas.snapshot_inventory"),
                                              target=target, runbook="maintenance_weekly"))
                return out
            results = _atlas_call("atlas.retention", atlas, call, "maintenance_weekly")
        if config.storage is None or not config.storage.buckets:
            results.append(not_configured("storage.buckets", "backups", STORAGE_HOW))
        else:
            for bucket in config.storage.buckets:
                results += bucket_settings(bucket)
        return results


# -- monthly ---------------------------------------------------------------------------------------
def storage_verification(bucket: Bucket) -> list[CheckResult]:
    """Checksums of the objects under the bucket's prefixes, and (S3) the canary restore test."""
    from maintenance.results import not_configured
    from maintenance.checks.storage import verify_bucket
    from maintenance.hooks.storage import client_error, s3_client

    try:
        client = s3_client(bucket.conn_id, pool=bucket.verify_concurrency, kind=bucket.kind)
    except _not_found():
        return [not_configured(f"storage.{bucket.name}.checksums", "backups",
                               f"add the aws connection '{bucket.conn_id}'")]
    return verify_bucket(client, bucket, classify=client_error)


def scratch_restore(atlas: Atlas, archive: str, workdir: str, target: str) -> CheckResult:
    """mongorestore the archive into the scratch database, then compare per-collection counts."""
    from maintenance.checks.backups import count_comparison, failed_call
    from maintenance.checks.restore import COUNTS, RUNBOOK, result, unpack_dump
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.mongo import collection_counts, mongorestore, restore_target
    from maintenance.operators.base import connection_or_none

    restore = atlas.restore_target
    assert restore is not None and restore.scratch   # the config refuses anything else
    binary = shutil.which("mongorestore")
    if binary is None:
        return result(COUNTS, "skipped", "skipped: mongorestore not installed (install the MongoDB Database "
                      "Tools on the worker)", target=target, reason="not_installed")
    missing = [c for c in (restore.conn_id, restore.live_conn_id) if connection_or_none(c) is None]
    if missing:
        return result(COUNTS, "skipped", "skipped: not configured (add the mongo connection "
                      f"{', '.join(repr(c) for c in missing)})", target=target, reason="not_configured")
    dump = unpack_dump(archive, workdir)
    if dump is None:
        return result(COUNTS, "fail", "the archive has no .bson files (not a mongodump layout): nothing to restore",
                      target=target, reason="restore_failed")
    try:
        uri, password = restore_target(restore.conn_id)
        mongorestore(binary, uri, password, dump[0], gzip=dump[1], conn_id=restore.conn_id)
        live, restored = collection_counts(restore.live_conn_id), collection_counts(restore.conn_id)
    except ProviderError as exc:
        return failed_call(COUNTS, exc, target=target, runbook=RUNBOOK)
    return count_comparison(live, restored, tolerance=restore.count_tolerance, target=target)


class VerifyBackupsOperator(_PreparedResults):
    """Monthly: storage checksums and canary restore, then an Atlas download restore job of the
    newest snapshot, waited for in the triggerer, its archive streamed and verified."""

    def execute(self, context: Any) -> Any:
        from maintenance.results import CheckResult, not_configured
        from maintenance.config import get_config

        config = get_config()
        results: list[CheckResult] = []
        if config.storage is None or not config.storage.buckets:
            results.append(not_configured("storage.checksums", "backups", STORAGE_HOW))
        else:
            for bucket in config.storage.buckets:
                results += storage_verification(bucket)
        atlas, skipped = _atlas(config, "atlas.restore_archive")
        if atlas is None or not atlas.restore_test:
            return self._finish(context, results + skipped)
        started: dict[str, Any] = {}

        def start() -> list[CheckResult]:
            from maintenance.hooks.atlas import AtlasHook

            hook = AtlasHook(atlas.conn_id)
            completed = [s for s in hook.snapshots() if s.get("status") == "completed"]
            if not completed:
                return [CheckResult(check="atlas.restore_archive", status="fail", reason="no_snapshot", group="backups",
                                    target=f"atlas:{hook.cluster}", runbook="maintenance_monthly", provider="atlas",
                                    summary="no completed snapshot to restore")]
            newest = max(completed, key=lambda s: str(s.get("createdAt")))
            job = hook.create_download_restore(str(newest["id"]))
            started.update(job=job, path=hook._cluster_path(f"/backup/restoreJobs/{job.get('id')}"),
                           target=f"atlas:{hook.cluster}", snapshot=newest.get("id"))
            return []
        failed = _atlas_call("atlas.restore_archive", atlas, start, "maintenance_monthly")
        if failed or not started:
            return self._finish(context, results + failed)
        from maintenance.triggers.atlas import AtlasPollTrigger

        self.log.info("restore job %s for snapshot %s created; waiting in the triggerer",
                      started["job"].get("id"), started["snapshot"])
        self.defer(trigger=AtlasPollTrigger(atlas.conn_id, started["path"], "restore_job",
                                            deadline=time.time() + atlas.restore_wait_minutes * 60,
                                            poll_seconds=atlas.poll_seconds,
                                            carry={"partial": [r.to_dict() for r in results],
                                                   "target": started["target"]}),
                   method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any], **_: Any) -> Any:
        from maintenance.results import CheckResult
        from maintenance.config import get_config
        from maintenance.hooks.atlas import AtlasHook

        atlas = get_config().atlas
        carry = event.get("carry") or {}
        target = carry.get("target", "atlas")
        results = [CheckResult.from_dict(r) for r in carry.get("partial", [])]
        base = dict(check="atlas.restore_archive", group="backups", target=target, runbook="maintenance_monthly",
                    provider="atlas")
        if atlas is None:
            return self._finish(context, results)
        if event.get("status") == "error":
            results.append(CheckResult(status="fail", reason=event.get("reason"), summary=event.get("message", ""),
                                       **base))
        elif event.get("status") == "timeout":
            results.append(CheckResult(status="fail", reason="timeout", summary=(
                f"the restore job was not ready after {atlas.restore_wait_minutes} min"), **base))
        else:
            from maintenance.checks.restore import archive_and_restore

            hook = AtlasHook(atlas.conn_id)
            max_bytes = int(atlas.max_archive_gb * 1024 ** 3)
            results += archive_and_restore(
                event.get("item") or {}, target=target, expected_collections=atlas.expected_collections,
                download=lambda url, path: hook.download(url, path, max_bytes=max_bytes),
                restore=(lambda archive, workdir: scratch_restore(atlas, archive, workdir, target))
                if atlas.restore_target is not None else None)
        return self._finish(context, results)


# -- manual_backup ---------------------------------------------------------------------------------
class TakeSnapshotOperator(_PreparedResults):
    """Ask Atlas for an on-demand snapshot; push its id (XCom key snapshot_id)."""

    template_fields: Sequence[str] = ("reason", "retention_days")

    def __init__(self, *, reason: str = "manual backup", retention_days: Any = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason, self.retention_days = reason, retention_days

    def execute(self, context: Any) -> Any:
        from maintenance.results import CheckResult
        from maintenance.config import get_config

        atlas, results = _atlas(get_config(), "atlas.manual_snapshot_request")
        if atlas is not None:
            def call() -> list[CheckResult]:
                from maintenance.hooks.atlas import AtlasHook

                hook = AtlasHook(atlas.conn_id)
                ti = context["ti"]
                description = f"{self.reason} (Airflow manual_backup {ti.run_id})"
                # A retry of this task first looks for the snapshot an earlier try may have started.
                snapshot = hook.find_snapshot(description) if (ti.try_number or 1) > 1 else None
                how = "found (requested by an earlier try)" if snapshot else "requested"
                snapshot = snapshot or hook.take_snapshot(description, int(self.retention_days))
                sid = snapshot.get("id")
                ti.xcom_push(key="snapshot_id", value=sid)
                return [CheckResult(check="atlas.manual_snapshot_request", status="ok", group="backups",
                                    target=f"atlas:{hook.cluster}", runbook="manual_backup", provider="atlas",
                                    summary=f"on-demand snapshot {sid} {how} ({snapshot.get('status')}), "
                                            f"kept {int(self.retention_days)} days: {self.reason}",
                                    evidence={"snapshot_id": sid})]
            results = _atlas_call("atlas.manual_snapshot_request", atlas, call, "manual_backup")
        return self._finish(context, results, fail_on_fail=True)


class WaitForSnapshotOperator(_PreparedResults):
    """Wait for the snapshot to complete in the triggerer (no worker slot); fail on failed or timeout."""

    template_fields: Sequence[str] = ("wait_minutes",)

    def __init__(self, *, wait_minutes: Any = 60, snapshot_task_id: str = "take_snapshot", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_minutes, self.snapshot_task_id = wait_minutes, snapshot_task_id

    def execute(self, context: Any) -> Any:
        from maintenance.config import get_config
        from maintenance.hooks.atlas import AtlasHook
        from maintenance.triggers.atlas import AtlasPollTrigger

        atlas = get_config().atlas
        sid = context["ti"].xcom_pull(task_ids=self.snapshot_task_id, key="snapshot_id")
        if atlas is None or not sid:
            raise AirflowSkipException("no snapshot was requested (take_snapshot skipped: Atlas not configured)")
        from maintenance.checks.backups import failed_call
        from maintenance.hooks.http_policy import ProviderError

        hook = AtlasHook(atlas.conn_id)
        try:
            path = hook._cluster_path(f"/backup/snapshots/{sid}")
        except _not_found():
            raise AirflowSkipException(f"connection '{atlas.conn_id}' is missing") from None
        except ProviderError as exc:
            return self._finish(context, [failed_call("atlas.manual_snapshot", exc, target=f"atlas:{atlas.conn_id}",
                                                      runbook="manual_backup")], fail_on_fail=True)
        started = time.time()
        self.defer(trigger=AtlasPollTrigger(atlas.conn_id, path, "snapshot",
                                            deadline=started + float(self.wait_minutes) * 60,
                                            poll_seconds=atlas.poll_seconds,
                                            carry={"started": started, "snapshot_id": sid,
                                                   "target": f"atlas:{hook.cluster}"}),
                   method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any], **_: Any) -> Any:
        from maintenance.checks.backups import snapshot_outcome

        carry = event.get("carry") or {}
        status = event.get("status")
        item = event.get("item") or {"id": carry.get("snapshot_id")}
        waited = time.time() - float(carry.get("started") or time.time())
        result = snapshot_outcome(item, timed_out=status == "timeout", waited_s=waited, target=carry.get("target", "atlas"),
                                  error=event.get("message") if status == "error" else None)
        if status == "error":
            result.reason = event.get("reason") or result.reason
        if result.status == "ok":
            context["ti"].xcom_push(key="snapshot", value=result.evidence)
        return self._finish(context, [result], fail_on_fail=True)


class ReportSnapshotOperator(BaseOperator):
    """Post the completed snapshot's id, time, size, expiry and reason to Slack (slack_alerts)."""

    template_fields: Sequence[str] = ("reason",)

    def __init__(self, *, reason: str = "", wait_task_id: str = "wait_for_snapshot", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason, self.wait_task_id = reason, wait_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from maintenance.results import CheckResult
        from maintenance.checks.backups import human_size, as_number
        from maintenance.notifications.slack import MaintenanceNotifier
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store

        snapshot = context["ti"].xcom_pull(task_ids=self.wait_task_id, key="snapshot")
        if not snapshot:
            raise AirflowSkipException("no completed snapshot to report")
        config = get_config()
        store = results_store(config.results.conn_id)
        result = CheckResult(
            check="atlas.manual_snapshot", status="ok", group="backups", runbook="manual_backup", provider="atlas",
            target=f"atlas:{config.atlas.conn_id if config.atlas else ''}",
            summary=(f"manual backup snapshot {snapshot.get('id')} completed at {snapshot.get('createdAt')}: "
                     f"{human_size(as_number(snapshot.get('storageSizeBytes')))}, expires {snapshot.get('expiresAt')}; "
                     f"reason: {self.reason}"),
            evidence=snapshot)
        enqueue_report_once(store, result, context, channel="report")   # a retry delivers it, never twice
        if MaintenanceNotifier(channel="report", task_scoped=False).deliver(context) == 0:
            raise AirflowException(f"snapshot {snapshot.get('id')} is taken, but the Slack message was not "
                                   f"delivered (connection '{config.alerting.slack_conn_id}'); see the task log")
        self.log.info("%s", result.summary)
        return result.to_dict()
