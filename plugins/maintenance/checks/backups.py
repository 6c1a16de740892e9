"""Backup checks: plain functions over Atlas and bucket facts, CheckResults out. No Airflow here.

Atlas shapes (provider-apis.md section 1) are read tolerantly: a missing key or a string where
a number is expected never crashes a check, it becomes a precise result.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any, Iterable

from maintenance.results import CheckResult

GROUP = "backups"
ATLAS, STORAGE = "atlas", "storage"
_UNIT_DAYS = {"days": 1, "day": 1, "weeks": 7, "week": 7, "months": 30, "month": 30, "years": 365, "year": 365}


def parse_time(value: Any) -> datetime | None:
    """An Atlas ISO-8601 timestamp ('2026-08-01T03:00:00Z'), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def human_size(n: float | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _result(check: str, status: str, summary: str, *, target: str, runbook: str | None, provider: str = ATLAS,
            **kwargs: Any) -> CheckResult:
    return CheckResult(check=check, status=status, summary=summary, target=target, group=GROUP,  # type: ignore[arg-type]
                       runbook=runbook, provider=provider, **kwargs)


def failed_call(check: str, error: Exception, *, target: str, runbook: str | None,
                provider: str = ATLAS) -> CheckResult:
    """A provider call that failed (ProviderError or a classified SDK error) as a fail result."""
    reason = getattr(error, "reason", None) or "connection_error"
    return _result(check, "fail", f"{error}", target=target, runbook=runbook, provider=provider, reason=reason)


# -- daily: freshness ---------------------------------------------------------------------------
def snapshot_freshness(snapshots: list[dict[str, Any]], *, now: datetime, max_age_hours: float,
                       since: datetime, target: str, runbook: str | None = None) -> list[CheckResult]:
    """The newest completed snapshot is at most max_age_hours old; no snapshot failed since `since`."""
    completed = [(t, s) for s in snapshots if s.get("status") == "completed"
                 and (t := parse_time(s.get("createdAt"))) is not None]
    pending = [s.get("id") for s in snapshots if s.get("status") in ("queued", "inProgress")]
    results = []
    if not completed:
        results.append(_result(
            "atlas.snapshot_age", "fail",
            f"no completed snapshot among {len(snapshots)} listed: the cluster has no usable backup"
            + (f" ({len(pending)} still in progress)" if pending else ""),
            target=target, runbook=runbook, reason="no_snapshot", metrics={"snapshots": len(snapshots)}))
    else:
        created, newest = max(completed, key=lambda pair: pair[0])
        age_h = (now - created).total_seconds() / 3600
        metrics = {"age_hours": round(age_h, 2), "max_age_hours": max_age_hours,
                   "size_bytes": as_number(newest.get("storageSizeBytes"))}
        evidence = {"snapshot_id": newest.get("id"), "created_at": newest.get("createdAt"), "pending": pending}
        if age_h > max_age_hours:
            results.append(_result(
                "atlas.snapshot_age", "fail",
                f"newest completed snapshot {newest.get('id')} is {age_h:.1f} h old (limit {max_age_hours:g} h)",
                target=target, runbook=runbook, reason="stale", metrics=metrics, evidence=evidence))
        else:
            results.append(_result(
                "atlas.snapshot_age", "ok",
                f"newest completed snapshot {newest.get('id')} is {age_h:.1f} h old (limit {max_age_hours:g} h)",
                target=target, runbook=runbook, metrics=metrics, evidence=evidence))
    failed = [s for s in snapshots if s.get("status") == "failed"
              and (parse_time(s.get("createdAt")) or now) >= since]
    if failed:
        ids = ", ".join(f"{s.get('id')} ({s.get('createdAt')})" for s in failed[:5])
        results.append(_result(
            "atlas.snapshot_failures", "fail",
            f"{len(failed)} snapshot(s) failed since {since:%Y-%m-%d %H:%M} UTC: {ids}",
            target=target, runbook=runbook, reason="snapshot_failed", metrics={"failed": len(failed)},
            evidence={"failed": [s.get("id") for s in failed]}))
    else:
        results.append(_result("atlas.snapshot_failures", "ok",
                               f"no failed snapshot since {since:%Y-%m-%d %H:%M} UTC",
                               target=target, runbook=runbook, metrics={"failed": 0}))
    return results


# -- weekly: policy and inventory ---------------------------------------------------------------
def retention_days(item: dict[str, Any]) -> float | None:
    value = as_number(item.get("retentionValue"))
    unit = _UNIT_DAYS.get(str(item.get("retentionUnit", "")).lower())
    return value * unit if value is not None and unit is not None else None


def backup_policy(schedule: dict[str, Any], cluster: dict[str, Any], *, min_retention_days: int,
                  require_pitr: bool, target: str, runbook: str | None = None) -> list[CheckResult]:
    results = []
    if cluster.get("backupEnabled") is False:
        results.append(_result("atlas.backup_enabled", "fail", "cloud backup is disabled on the cluster (backupEnabled false)",
                               target=target, runbook=runbook, reason="backup_disabled"))
    else:
        results.append(_result("atlas.backup_enabled", "ok", "cloud backup is enabled", target=target, runbook=runbook))

    items = [item for policy in schedule.get("policies") or [] if isinstance(policy, dict)
             for item in policy.get("policyItems") or [] if isinstance(item, dict)]
    daily = [(retention_days(i), i) for i in items if str(i.get("frequencyType", "")).lower() == "daily"]
    daily_days = [d for d, _ in daily if d is not None]
    if not daily:
        results.append(_result("atlas.retention", "fail",
                               f"the backup policy has no daily item ({len(items)} item(s)): daily snapshots are not kept",
                               target=target, runbook=runbook, reason="no_daily_policy"))
    elif not daily_days:
        results.append(_result("atlas.retention", "fail", "the daily policy item has no readable retention",
                               target=target, runbook=runbook, reason="malformed_response",
                               evidence={"items": [i for _, i in daily]}))
    else:
        kept = max(daily_days)
        status = "ok" if kept >= min_retention_days else "fail"
        results.append(_result(
            "atlas.retention", status,
            f"daily snapshots are kept {kept:g} days (minimum {min_retention_days})"
            + ("" if status == "ok" else ": raise the daily retention in the backup policy"),
            target=target, runbook=runbook, reason=None if status == "ok" else "retention_too_short",
            metrics={"daily_retention_days": kept, "min_retention_days": min_retention_days}))

    pit = cluster.get("pitEnabled")
    if pit is True:
        window = as_number(schedule.get("restoreWindowDays"))
        results.append(_result("atlas.pitr", "ok", "point-in-time restore is on"
                               + (f" (restore window {window:g} days)" if window is not None else ""),
                               target=target, runbook=runbook, metrics={"restore_window_days": window}))
    elif require_pitr:
        results.append(_result("atlas.pitr", "fail",
                               "point-in-time restore is off (pitEnabled false) but require_pitr is set: "
                               "turn on Continuous Cloud Backup", target=target, runbook=runbook, reason="pitr_off"))
    else:
        results.append(_result("atlas.pitr", "ok", "point-in-time restore is off (not required by the config)",
                               target=target, runbook=runbook))
    return results


def snapshot_inventory(snapshots: list[dict[str, Any]], previous: dict[str, Any] | None, *, target: str,
                       runbook: str | None = None) -> CheckResult:
    """Snapshot count and total size, with the trend against the previous run's metrics."""
    count = len(snapshots)
    total = sum(as_number(s.get("storageSizeBytes")) or 0 for s in snapshots)
    completed = sum(1 for s in snapshots if s.get("status") == "completed")
    metrics: dict[str, Any] = {"snapshots": count, "completed": completed, "total_bytes": total}
    trend = "first measurement"
    status = "ok"
    if previous and previous.get("snapshots") is not None:
        d_count = count - int(previous["snapshots"])
        d_bytes = total - float(previous.get("total_bytes") or 0)
        metrics.update(snapshots_change=d_count, total_bytes_change=d_bytes)
        trend = f"{d_count:+d} snapshot(s), {'+' if d_bytes >= 0 else '-'}{human_size(abs(d_bytes))} since the previous check"
        if previous["snapshots"] and count < int(previous["snapshots"]) / 2:
            status = "warn"
            trend += ": the number of snapshots halved (retention shortened or snapshots deleted?)"
    if count == 0:
        status = "warn"
    return _result("atlas.snapshot_inventory", status,
                   f"{count} snapshot(s) ({completed} completed), {human_size(total)} in total; {trend}",
                   target=target, runbook=runbook, metrics=metrics)


# -- manual backup ---------------------------------------------------------------------------------
def snapshot_outcome(snapshot: dict[str, Any] | None, *, timed_out: bool, waited_s: float, target: str,
                     error: str | None = None, runbook: str = "manual_backup") -> CheckResult:
    """The end of the wait for an on-demand snapshot: completed, failed, or still running at the deadline."""
    snapshot = snapshot or {}
    sid, status = snapshot.get("id"), snapshot.get("status")
    evidence = {k: snapshot.get(k) for k in ("id", "status", "createdAt", "expiresAt", "description",
                                              "storageSizeBytes", "snapshotType")}
    metrics = {"waited_s": round(waited_s, 1), "size_bytes": as_number(snapshot.get("storageSizeBytes"))}
    if error:
        return _result("atlas.manual_snapshot", "fail", f"snapshot {sid}: {error}", target=target, runbook=runbook,
                       reason="provider_error", evidence=evidence, metrics=metrics)
    if status == "completed":
        return _result("atlas.manual_snapshot", "ok",
                       f"snapshot {sid} completed: {human_size(metrics['size_bytes'])}, created {snapshot.get('createdAt')}, "
                       f"expires {snapshot.get('expiresAt')}", target=target, runbook=runbook,
                       evidence=evidence, metrics=metrics)
    if status == "failed":
        return _result("atlas.manual_snapshot", "fail",
                       f"Atlas reports snapshot {sid} as failed after {waited_s / 60:.1f} min: hold the update; "
                       "see Project > Activity Feed", target=target, runbook=runbook, reason="snapshot_failed",
                       evidence=evidence, metrics=metrics)
    if timed_out:
        return _result("atlas.manual_snapshot", "fail",
                       f"snapshot {sid} is still {status} after {waited_s / 60:.1f} min (wait_minutes ran out): "
                       "hold the update; wait for it in Atlas or trigger again with a larger wait_minutes",
                       target=target, runbook=runbook, reason="timeout", evidence=evidence, metrics=metrics)
    return _result("atlas.manual_snapshot", "fail", f"snapshot {sid} has the unexpected status {status!r}",
                   target=target, runbook=runbook, reason="malformed_response", evidence=evidence, metrics=metrics)


# -- monthly: the restore archive --------------------------------------------------------------------
def _collection_of(name: str) -> str | None:
    """'dump/app/users.bson.gz' -> 'app.users' (mongodump layout); None for anything else."""
    path = PurePosixPath(name)
    for suffix in (".bson.gz", ".bson", ".metadata.json.gz", ".metadata.json"):
        if path.name.endswith(suffix) and len(path.parts) >= 2:
            collection = path.name[: -len(suffix)]
            return f"{path.parts[-2]}.{collection}" if collection else None
    return None


def verify_archive(path: str, expected_collections: Iterable[str], *, target: str,
                   runbook: str | None = "maintenance_monthly", chunk: int = 1024 * 1024) -> CheckResult:
    """A restore archive (tar.gz): non-empty, every member readable to its end (gzip CRC and tar
    structure checked), and the expected collections present. Streams; memory stays at `chunk`."""
    expected = sorted(set(expected_collections))
    check = "atlas.restore_archive"
    members = files = 0
    total = 0
    collections: set[str] = set()
    raw_dbpath = False
    try:
        with gzip.open(path, "rb") as compressed, tarfile.open(fileobj=compressed, mode="r|") as archive:
            for member in archive:
                members += 1
                raw_dbpath |= PurePosixPath(member.name).name in ("WiredTiger", "_mdb_catalog.wt")
                if member.isfile():
                    files += 1
                    stream = archive.extractfile(member)
                    if stream is not None:
                        while block := stream.read(chunk):
                            total += len(block)
                    if (name := _collection_of(member.name)) is not None:
                        collections.add(name)
            # tar stops at its end-of-archive blocks; read the gzip stream to its end so that its
            # CRC-32 and length trailer are checked too.
            while compressed.read(chunk):
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        return _result(check, "fail", f"the restore archive is corrupt: {type(exc).__name__}: {exc} "
                       f"(after {members} member(s))", target=target, runbook=runbook, reason="corrupt_archive",
                       metrics={"members": members, "bytes": total})
    metrics = {"members": members, "files": files, "bytes": total, "collections": len(collections)}
    evidence = {"collections": sorted(collections)[:200]}
    if files == 0 or total == 0:
        return _result(check, "fail", "the restore archive is empty", target=target, runbook=runbook,
                       reason="empty_archive", metrics=metrics)
    missing = [c for c in expected if c not in collections]
    if missing and raw_dbpath and not collections:
        return _result(check, "warn", f"archive intact ({files} files, {human_size(total)}), but it is a raw dbpath "
                       "(WiredTiger files): collection names need mongod to read, so the expected collections "
                       "were not verified", target=target, runbook=runbook, metrics=metrics, evidence=evidence)
    if missing:
        return _result(check, "fail", f"archive intact but {len(missing)} expected collection(s) missing: "
                       f"{', '.join(missing[:10])}", target=target, runbook=runbook, reason="missing_collections",
                       metrics=metrics, evidence={**evidence, "missing": missing})
    return _result(check, "ok", f"archive intact: {files} files, {human_size(total)}, {len(collections)} collection(s)"
                   + (f", all {len(expected)} expected present" if expected else ""),
                   target=target, runbook=runbook, metrics=metrics, evidence=evidence)


def count_comparison(live: dict[str, int], restored: dict[str, int], *, tolerance: float, target: str,
                     runbook: str | None = "maintenance_monthly") -> CheckResult:
    """Per-collection document counts of the restored copy against the live database.

    A collection differs when |restored - live| > tolerance * max(live, 1): the snapshot is older
    than the live data, so small differences are expected; a missing collection always fails.
    """
    check = "atlas.restore_counts"
    missing = sorted(set(live) - set(restored))
    off = []
    for name in sorted(set(live) & set(restored)):
        allowed = tolerance * max(live[name], 1)
        if abs(restored[name] - live[name]) > allowed:
            off.append(f"{name}: restored {restored[name]} vs live {live[name]}")
    metrics = {"collections": len(live), "missing": len(missing), "outside_tolerance": len(off),
               "restored_documents": sum(restored.values()), "live_documents": sum(live.values())}
    if missing or off:
        parts = ([f"missing in the restore: {', '.join(missing[:10])}"] if missing else []) + off[:10]
        return _result(check, "fail", f"restored counts differ beyond {tolerance:.0%}: " + "; ".join(parts),
                       target=target, runbook=runbook, reason="count_mismatch", metrics=metrics,
                       evidence={"missing": missing, "outside_tolerance": off})
    return _result(check, "ok", f"{len(live)} collection(s) restored; every count within {tolerance:.0%} of live",
                   target=target, runbook=runbook, metrics=metrics)


# -- buckets -------------------------------------------------------------------------------------------
def s3_bucket_settings(bucket: str, facts: dict[str, Any], *, require_replication: bool, require_lifecycle: bool,
                       runbook: str | None = "maintenance_weekly") -> list[CheckResult]:
    """facts: versioning ('Enabled'|'Suspended'|None), replication (rules or None), replication_statuses
    (ReplicationStatus of recent objects), lifecycle (rules or None), public_access_block (dict or None)."""
    target = f"s3://{bucket}"
    prefix = f"storage.{bucket}"

    def res(name: str, status: str, summary: str, **kw: Any) -> CheckResult:
        return _result(f"{prefix}.{name}", status, summary, target=target, runbook=runbook, provider=STORAGE, **kw)

    out = []
    versioning = facts.get("versioning")
    out.append(res("versioning", "ok", "versioning is Enabled") if versioning == "Enabled" else
               res("versioning", "fail", f"versioning is {versioning or 'off (never enabled)'}: an overwritten "
                   "or deleted backup cannot be recovered", reason="versioning_off"))
    rules = facts.get("replication")
    enabled = [r for r in rules or [] if r.get("Status") == "Enabled"]
    statuses = facts.get("replication_statuses") or []
    failed = [s for s in statuses if s == "FAILED"]
    if not enabled:
        summary = "replication is not configured" if not rules else "every replication rule is disabled"
        out.append(res("replication", "fail", summary + " (require_replication is set)", reason="replication_missing")
                   if require_replication else res("replication", "ok", summary + " (not required by the config)"))
    elif failed:
        out.append(res("replication", "fail", f"replication configured but {len(failed)} of {len(statuses)} recent "
                       "objects have ReplicationStatus FAILED", reason="replication_failed",
                       metrics={"failed": len(failed)}))
    else:
        destinations = sorted({str(r.get("Destination", {}).get("Bucket", "?")) for r in enabled})
        out.append(res("replication", "ok", f"{len(enabled)} replication rule(s) enabled to {', '.join(destinations)}"
                       + (f"; {len(statuses)} recent object(s) replicated or pending" if statuses else "")))
    lifecycle = [r for r in facts.get("lifecycle") or [] if r.get("Status", "Enabled") == "Enabled"]
    if lifecycle:
        out.append(res("lifecycle", "ok", f"{len(lifecycle)} lifecycle rule(s) enabled"))
    else:
        out.append(res("lifecycle", "fail" if require_lifecycle else "ok",
                       "no enabled lifecycle rule: old versions and backups are never expired or moved"
                       + ("" if require_lifecycle else " (not required by the config)"),
                       reason="lifecycle_missing" if require_lifecycle else None))
    block = facts.get("public_access_block") or {}
    flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    off = [f for f in flags if not block.get(f)]
    out.append(res("public_access", "ok", "public access is blocked (all four settings on)") if not off else
               res("public_access", "fail", f"public access is not fully blocked: {', '.join(off)} off",
                   reason="public_access", evidence={"public_access_block": block}))
    return out


def r2_bucket_settings(bucket: str, lock_rules: list[dict[str, Any]], lifecycle: list[dict[str, Any]], *,
                       require_replication: bool, require_lifecycle: bool,
                       runbook: str | None = "maintenance_weekly") -> list[CheckResult]:
    """R2: versioning and replication do not exist; lock rules (WORM) and lifecycle do."""
    target = f"r2://{bucket}"
    prefix = f"storage.{bucket}"

    def res(name: str, status: str, summary: str, **kw: Any) -> CheckResult:
        return _result(f"{prefix}.{name}", status, summary, target=target, runbook=runbook, provider=STORAGE, **kw)

    out = [res("versioning", "skipped", "Cloudflare R2 has no S3 versioning (the API does not exist there): "
               "immutability is checked through the bucket lock rules instead", reason="not_available_on_r2")]
    if require_replication:
        out.append(res("replication", "fail", "require_replication is set but Cloudflare R2 has no replication: "
                       "copy the backups to a second bucket or provider, or set require_replication: false",
                       reason="not_available_on_r2"))
    else:
        out.append(res("replication", "skipped", "Cloudflare R2 has no S3 replication (the API does not exist there)",
                       reason="not_available_on_r2"))
    enabled = [r for r in lock_rules if r.get("enabled", True)]
    if enabled:
        described = []
        for rule in enabled[:5]:
            cond = rule.get("condition") or {}
            kind = cond.get("type")
            when = (f"{as_number(cond.get('maxAgeSeconds')) or 0:g}s" if kind == "Age" else
                    cond.get("date") if kind == "Date" else "indefinitely" if kind == "Indefinite" else str(kind))
            described.append(f"{rule.get('prefix') or '(all)'}: {when}")
        out.append(res("lock", "ok", f"{len(enabled)} bucket lock rule(s) enabled: {'; '.join(described)}",
                       metrics={"lock_rules": len(enabled)}))
    else:
        out.append(res("lock", "fail", "no enabled bucket lock rule: backups can be deleted or overwritten "
                       "(R2 > bucket > Settings > Bucket lock rules)", reason="lock_missing"))
    live = [r for r in lifecycle if r.get("enabled", True)]
    if live:
        out.append(res("lifecycle", "ok", f"{len(live)} lifecycle rule(s) enabled"))
    else:
        out.append(res("lifecycle", "fail" if require_lifecycle else "ok",
                       "no enabled lifecycle rule" + ("" if require_lifecycle else " (not required by the config)"),
                       reason="lifecycle_missing" if require_lifecycle else None))
    return out


def since_default(now: datetime, previous_start: datetime | None, hours: float = 24) -> datetime:
    """The start of the window for 'failed since the last run'."""
    return previous_start if previous_start is not None else now - timedelta(hours=hours)
