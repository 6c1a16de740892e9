"""Backup checks as plain functions: Atlas facts, archives, counts, bucket settings, config guard."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from atlas_server import corrupt, mongodump_archive, schedule, snapshot
from maintenance.checks import backups as b
from maintenance.config import ConfigError, load_config

NOW = datetime(2026, 8, 2, 6, 0, tzinfo=timezone.utc)
SINCE = NOW - timedelta(hours=24)


def by_check(results):
    return {r.check: r for r in results}


def freshness(snaps):
    return by_check(b.snapshot_freshness(snaps, now=NOW, max_age_hours=26, since=SINCE, target="atlas:prod"))


def test_fresh_snapshot_is_ok():
    r = freshness([snapshot("a", 3, now=NOW), snapshot("old", 50, now=NOW)])
    assert r["atlas.snapshot_age"].status == "ok"
    assert r["atlas.snapshot_age"].metrics["age_hours"] == 3.0
    assert r["atlas.snapshot_age"].evidence["snapshot_id"] == "a"
    assert r["atlas.snapshot_failures"].status == "ok"


def test_stale_snapshot_fails_with_its_age():
    r = freshness([snapshot("a", 30, now=NOW), snapshot("b", 40, now=NOW)])
    age = r["atlas.snapshot_age"]
    assert age.status == "fail" and age.reason == "stale"
    assert "30.0 h old (limit 26 h)" in age.summary and "a" in age.summary


def test_newest_in_progress_does_not_hide_a_stale_completed_one():
    r = freshness([snapshot("running", 1, status="inProgress", now=NOW), snapshot("a", 30, now=NOW)])
    assert r["atlas.snapshot_age"].status == "fail"


def test_failed_snapshot_since_last_run_fails():
    r = freshness([snapshot("ok", 2, now=NOW), snapshot("bad", 5, status="failed", now=NOW),
                   snapshot("older-bad", 48, status="failed", now=NOW)])
    assert r["atlas.snapshot_age"].status == "ok"
    failures = r["atlas.snapshot_failures"]
    assert failures.status == "fail" and failures.reason == "snapshot_failed"
    assert failures.evidence["failed"] == ["bad"], "a failure before the last run was already reported"


def test_missing_snapshots_fail():
    r = freshness([])
    assert r["atlas.snapshot_age"].status == "fail" and r["atlas.snapshot_age"].reason == "no_snapshot"
    r = freshness([snapshot("q", 1, status="queued", now=NOW)])
    assert r["atlas.snapshot_age"].status == "fail" and "1 still in progress" in r["atlas.snapshot_age"].summary


def test_tolerant_of_odd_shapes():
    r = freshness([{"id": "x", "status": "completed"}, {"status": "completed", "createdAt": "not a date"}])
    assert r["atlas.snapshot_age"].status == "fail"   # no usable createdAt: no usable snapshot


def policy(sched, cluster, require_pitr=True):
    return by_check(b.backup_policy(sched, cluster, min_retention_days=30, require_pitr=require_pitr, target="t"))


CLUSTER = {"backupEnabled": True, "pitEnabled": True}


def test_policy_ok():
    r = policy(schedule(30), CLUSTER)
    assert [r[c].status for c in ("atlas.backup_enabled", "atlas.retention", "atlas.pitr")] == ["ok"] * 3
    assert r["atlas.retention"].metrics["daily_retention_days"] == 30


def test_retention_under_30_days_fails():
    r = policy(schedule(7), CLUSTER)
    assert r["atlas.retention"].status == "fail" and r["atlas.retention"].reason == "retention_too_short"
    assert "7 days (minimum 30)" in r["atlas.retention"].summary


def test_retention_in_weeks_counts_as_days():
    assert policy(schedule(5, unit="weeks"), CLUSTER)["atlas.retention"].status == "ok"
    assert policy(schedule(4, unit="weeks"), CLUSTER)["atlas.retention"].status == "fail"


def test_no_daily_policy_item_fails():
    sched = schedule()
    sched["policies"][0]["policyItems"] = sched["policies"][0]["policyItems"][:1]
    assert policy(sched, CLUSTER)["atlas.retention"].reason == "no_daily_policy"


def test_pitr_off_fails_only_when_required():
    assert policy(schedule(), {**CLUSTER, "pitEnabled": False})["atlas.pitr"].status == "fail"
    assert policy(schedule(), {**CLUSTER, "pitEnabled": False}, require_pitr=False)["atlas.pitr"].status == "ok"
    assert policy(schedule(), {**CLUSTER, "backupEnabled": False})["atlas.backup_enabled"].status == "fail"


def test_inventory_trend():
    snaps = [snapshot(str(i), i * 24, size=1024 * 1024, now=NOW) for i in range(4)]
    first = b.snapshot_inventory(snaps, None, target="t")
    assert first.metrics["snapshots"] == 4 and first.metrics["total_bytes"] == 4 * 1024 * 1024
    assert "first measurement" in first.summary
    later = b.snapshot_inventory(snaps + [snapshot("x", 1, size=1024 * 1024, now=NOW)], first.metrics, target="t")
    assert later.status == "ok" and later.metrics["snapshots_change"] == 1 and "+1 snapshot(s), +1.0 MB" in later.summary
    halved = b.snapshot_inventory(snaps[:1], first.metrics, target="t")
    assert halved.status == "warn" and "halved" in halved.summary


@pytest.mark.parametrize("status,timed_out,expected,reason", [
    ("completed", False, "ok", None), ("failed", False, "fail", "snapshot_failed"),
    ("inProgress", True, "fail", "timeout")])
def test_snapshot_outcome(status, timed_out, expected, reason):
    r = b.snapshot_outcome({"id": "od1", "status": status, "storageSizeBytes": 2048}, timed_out=timed_out,
                           waited_s=90, target="t")
    assert (r.status, r.reason) == (expected, reason)
    assert "od1" in r.summary


# -- archives and counts -------------------------------------------------------------------------
def test_archive_ok_with_expected_collections(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(mongodump_archive({"app.users": b"x" * 100, "app.orders": b"y"}))
    r = b.verify_archive(str(path), ["app.users", "app.orders"], target="t")
    assert r.status == "ok" and r.metrics["collections"] == 2 and "all 2 expected present" in r.summary


def test_archive_missing_collection(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(mongodump_archive({"app.users": b"x"}))
    r = b.verify_archive(str(path), ["app.users", "app.payments"], target="t")
    assert r.status == "fail" and r.reason == "missing_collections" and "app.payments" in r.summary


def test_corrupt_archive_fails(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(corrupt(mongodump_archive({f"app.c{i}": bytes(range(256)) * 200 for i in range(5)})))
    r = b.verify_archive(str(path), [], target="t")
    assert r.status == "fail" and r.reason == "corrupt_archive" and "corrupt" in r.summary


def test_truncated_and_empty_archives_fail(tmp_path):
    whole = mongodump_archive({"app.users": bytes(range(256)) * 400})
    path = tmp_path / "t.tar.gz"
    path.write_bytes(whole[: len(whole) // 2])
    assert b.verify_archive(str(path), [], target="t").reason == "corrupt_archive"
    path.write_bytes(b"")
    assert b.verify_archive(str(path), [], target="t").status == "fail"


def test_count_comparison():
    live = {"app.users": 1000, "app.orders": 50}
    ok = b.count_comparison(live, {"app.users": 990, "app.orders": 50}, tolerance=0.05, target="t")
    assert ok.status == "ok"
    off = b.count_comparison(live, {"app.users": 900, "app.orders": 50}, tolerance=0.05, target="t")
    assert off.status == "fail" and "app.users: restored 900 vs live 1000" in off.summary
    missing = b.count_comparison(live, {"app.users": 1000}, tolerance=0.05, target="t")
    assert missing.status == "fail" and "app.orders" in missing.evidence["missing"]


# -- buckets ----------------------------------------------------------------------------------------
GOOD_S3 = {"versioning": "Enabled", "replication": [{"Status": "Enabled", "Destination": {"Bucket": "arn:dr"}}],
           "replication_statuses": ["COMPLETED", "PENDING"], "lifecycle": [{"ID": "x", "Status": "Enabled"}],
           "public_access_block": {k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                                     "RestrictPublicBuckets")}}


def s3(facts, require_replication=True):
    return by_check(b.s3_bucket_settings("bk", facts, require_replication=require_replication, require_lifecycle=True))


def test_s3_settings_good():
    assert {r.status for r in s3(GOOD_S3).values()} == {"ok"}


def test_s3_settings_bad():
    r = s3({**GOOD_S3, "versioning": None, "replication": None, "lifecycle": None,
            "public_access_block": {"BlockPublicAcls": True}})
    assert r["storage.bk.versioning"].reason == "versioning_off"
    assert r["storage.bk.replication"].reason == "replication_missing"
    assert r["storage.bk.lifecycle"].status == "fail"
    assert r["storage.bk.public_access"].status == "fail" and "BlockPublicPolicy" in r["storage.bk.public_access"].summary
    assert s3({**GOOD_S3, "replication": None}, require_replication=False)["storage.bk.replication"].status == "ok"
    failed = s3({**GOOD_S3, "replication_statuses": ["FAILED", "COMPLETED"]})["storage.bk.replication"]
    assert failed.status == "fail" and failed.reason == "replication_failed"


def test_r2_says_versioning_and_replication_do_not_exist():
    r = by_check(b.r2_bucket_settings("bk", [{"id": "1", "enabled": True, "prefix": "backups/",
                                              "condition": {"type": "Age", "maxAgeSeconds": 2592000}}],
                                      [{"id": "l", "enabled": True}], require_replication=False, require_lifecycle=True))
    assert r["storage.bk.versioning"].status == "skipped" and "no S3 versioning" in r["storage.bk.versioning"].summary
    assert r["storage.bk.replication"].status == "skipped" and "no S3 replication" in r["storage.bk.replication"].summary
    assert r["storage.bk.lock"].status == "ok" and "backups/: 2.592e+06s" in r["storage.bk.lock"].summary
    bad = by_check(b.r2_bucket_settings("bk", [{"id": "1", "enabled": False}], [], require_replication=True,
                                        require_lifecycle=True))
    assert bad["storage.bk.lock"].status == "fail" and bad["storage.bk.lifecycle"].status == "fail"
    assert bad["storage.bk.replication"].status == "fail" and "R2 has no replication" in bad["storage.bk.replication"].summary


# -- config guard -------------------------------------------------------------------------------------
def test_automated_restore_to_a_non_scratch_target_is_refused(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("""
        site: {name: x, url: "https://x.example"}
        atlas:
          restore_target: {conn_id: mongo_prod_copy}
    """))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert f"{path}: atlas.restore_target: automated restore refused: connection 'mongo_prod_copy' is not " \
           "marked scratch: true" in str(error.value)
    path.write_text(path.read_text().replace("{conn_id: mongo_prod_copy}", "{conn_id: mongo_restore_scratch, scratch: true}"))
    assert load_config(path).atlas.restore_target.scratch is True


def test_scratch_restore_without_mongorestore_is_skipped(tmp_path, monkeypatch):
    from maintenance.config import Atlas, RestoreTarget
    from maintenance.operators.backups import scratch_restore

    monkeypatch.setenv("PATH", str(tmp_path))          # no mongorestore on this PATH
    atlas = Atlas(restore_target=RestoreTarget(scratch=True))
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(mongodump_archive({"app.users": b"x"}))
    result = scratch_restore(atlas, str(archive), str(tmp_path), "atlas:prod")
    assert result.status == "skipped" and result.summary.startswith("skipped: mongorestore not installed")
