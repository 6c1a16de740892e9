"""AtlasHook and the Atlas operators' checks against the local Atlas API (real HTTP Digest)."""

from __future__ import annotations

import asyncio
import textwrap
import time

import pytest

from atlas_server import AtlasServer, schedule, snapshot
from maintenance.config import load_config
from maintenance.hooks.atlas import AtlasHook
from maintenance.hooks.http_policy import ProviderError, RetryPolicy
from maintenance.operators.backups import AtlasFreshnessOperator, BackupStatusOperator
from maintenance.triggers.atlas import AtlasPollTrigger


@pytest.fixture
def atlas(monkeypatch):
    with AtlasServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", server.connection_json())
        yield server


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: test.example, url: "https://test.example"}}
        results: {{conn_id: test_results}}
        atlas: {{conn_id: atlas_api, poll_seconds: 0.05}}
    """))
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS",
                       f'{{"conn_type": "sqlite", "extra": {{"sqlalchemy_url": "sqlite:///{tmp_path / "r.db"}"}}}}')
    return load_config(path)


def by_check(results):
    return {r.check: r for r in results}


def test_digest_auth_and_versioned_media_types(atlas):
    hook = AtlasHook()
    assert [s["id"] for s in hook.snapshots()] == ["s-fresh"]
    assert hook.schedule()["restoreWindowDays"] == 7
    assert hook.cluster_description()["pitEnabled"] is True
    assert atlas.unauthorized >= 1, "the server challenged and the client answered the Digest challenge"
    assert ("/backup/schedule", "application/vnd.atlas.2024-08-05+json") in atlas.accepts
    assert ("/", "application/vnd.atlas.2024-08-05+json") in atlas.accepts
    assert ("/backup/snapshots", "application/vnd.atlas.2023-01-01+json") in atlas.accepts


def test_pagination_reads_every_page(atlas):
    atlas.snapshots = [snapshot(f"s{i}", i) for i in range(230)]
    assert len(AtlasHook().snapshots()) == 230


def test_wrong_key_names_the_connection(atlas, monkeypatch, config):
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json(private_key="wrong-private-key"))
    with pytest.raises(ProviderError) as error:
        AtlasHook().snapshots()
    assert error.value.reason == "unauthorized" and "connection 'atlas_api'" in str(error.value)
    [result] = AtlasFreshnessOperator(task_id="t").run_checks(config, {})
    assert result.status == "fail" and result.reason == "unauthorized"
    assert "check the credentials of connection 'atlas_api'" in result.summary
    assert "wrong-private-key" not in result.summary and "atlas-private-SECRET" not in result.summary


def test_service_account_oauth(atlas, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_SA", atlas.service_account_json())
    assert [s["id"] for s in AtlasHook("atlas_sa").snapshots()] == ["s-fresh"]
    assert atlas.tokens
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_SA", atlas.service_account_json(secret="nope"))
    with pytest.raises(ProviderError) as error:
        AtlasHook("atlas_sa").snapshots()
    assert error.value.reason == "unauthorized" and "atlas_sa" in str(error.value)


@pytest.mark.parametrize("snapshots,status,reason", [
    ([snapshot("fresh", 2)], "ok", None),
    ([snapshot("stale", 40)], "fail", "stale"),
    ([], "fail", "no_snapshot"),
])
def test_freshness_operator(atlas, config, snapshots, status, reason):
    atlas.snapshots = snapshots
    r = by_check(AtlasFreshnessOperator(task_id="t").run_checks(config, {}))
    assert (r["atlas.snapshot_age"].status, r["atlas.snapshot_age"].reason) == (status, reason)
    assert r["atlas.snapshot_age"].target == "atlas:prod"


def test_failed_snapshot_operator(atlas, config):
    atlas.snapshots = [snapshot("ok", 2), snapshot("broken", 6, status="failed")]
    r = by_check(AtlasFreshnessOperator(task_id="t").run_checks(config, {}))
    assert r["atlas.snapshot_failures"].status == "fail" and "broken" in r["atlas.snapshot_failures"].summary


def test_not_configured_is_skipped(config, monkeypatch):
    [result] = AtlasFreshnessOperator(task_id="t").run_checks(config.model_copy(update={"atlas": None}), {})
    assert result.status == "skipped" and "atlas_api" in result.summary
    monkeypatch.delenv("AIRFLOW_CONN_ATLAS_API", raising=False)
    [result] = AtlasFreshnessOperator(task_id="t").run_checks(config, {})
    assert result.status == "skipped" and "connection 'atlas_api' is missing" in result.summary


def test_weekly_status_retention_pitr_and_trend(atlas, config):
    atlas.schedule = schedule(daily_days=7)
    atlas.cluster["pitEnabled"] = False
    atlas.snapshots = [snapshot(f"s{i}", i * 24, size=10 * 1024 * 1024) for i in range(3)]
    r = by_check(BackupStatusOperator(task_id="t").run_checks(config, {}))
    assert r["atlas.retention"].status == "fail" and "7 days (minimum 30)" in r["atlas.retention"].summary
    assert r["atlas.pitr"].status == "fail" and r["atlas.pitr"].reason == "pitr_off"
    assert r["atlas.snapshot_inventory"].metrics["snapshots"] == 3
    assert r["storage.buckets"].status == "skipped"

    # the trend compares with the previous stored run
    from maintenance.hooks.results_db import results_store
    results_store("test_results").record([r["atlas.snapshot_inventory"]])
    atlas.snapshots.append(snapshot("s9", 100, size=10 * 1024 * 1024))
    r = by_check(BackupStatusOperator(task_id="t").run_checks(config, {}))
    assert "+1 snapshot(s), +10.0 MB since the previous check" in r["atlas.snapshot_inventory"].summary


FAST = RetryPolicy(timeout=0.5, backoff_base=0.01, jitter=0)
FAULTS = [("after", "timeout"), ("after", "drop"), ("after", 503)]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: str(f[1]))
def test_a_snapshot_request_is_never_repeated_after_a_fault(atlas, fault):
    """The POST times out / drops / answers 503 after Atlas created the snapshot: the hook finds
    it instead of asking again, so exactly one on-demand snapshot exists."""
    atlas.post_faults = [fault]
    taken = AtlasHook(policy=FAST).take_snapshot("before v2 (run 1)", 3)
    assert taken["id"] == "od1" and taken["description"] == "before v2 (run 1)"
    assert atlas.created == [{"description": "before v2 (run 1)", "retentionInDays": 3}]
    assert [s["id"] for s in atlas.snapshots if s["snapshotType"] == "onDemand"] == ["od1"]


def test_a_refused_snapshot_request_is_retried(atlas):
    """A 503 before anything was created: the lookup finds nothing, the retry creates one."""
    atlas.post_faults = [("before", 503), ("before", 502)]
    assert AtlasHook(policy=FAST).take_snapshot("x", 1)["id"] == "od1" and len(atlas.created) == 1


@pytest.mark.parametrize("fault", FAULTS + [("before", 503)], ids=lambda f: f"{f[0]}-{f[1]}")
def test_a_restore_job_request_is_never_repeated_after_a_fault(atlas, fault):
    hook = AtlasHook(policy=FAST)
    earlier = hook.create_download_restore("s-fresh")          # an older job of the same snapshot
    atlas.post_faults = [fault]
    job = hook.create_download_restore("s-fresh")
    assert job["id"] != earlier["id"] and job["snapshotId"] == "s-fresh"
    assert sorted(atlas.jobs) == sorted([earlier["id"], job["id"]]), "exactly one new restore job"


def test_when_the_lookup_fails_the_request_is_not_repeated(atlas):
    atlas.post_faults = [("after", 503)]
    atlas.list_faults = 100
    with pytest.raises(ProviderError) as error:
        AtlasHook(policy=FAST).take_snapshot("x", 1)
    assert error.value.reason == "http_5xx"
    assert "whether the on-demand snapshot was created is unknown" in str(error.value)
    assert len(atlas.created) == 1


def run_trigger(trigger):
    async def first():
        async for event in trigger.run():
            return event.payload
    return asyncio.run(first())


def test_trigger_waits_for_completed_with_digest(atlas):
    atlas.polls = 3
    sid = AtlasHook().take_snapshot("before v2", 3)["id"]
    path = f"/api/atlas/v2/groups/{atlas.project_id}/clusters/prod/backup/snapshots/{sid}"
    event = run_trigger(AtlasPollTrigger("atlas_api", path, "snapshot", deadline=time.time() + 30, poll_seconds=0.05))
    assert event["status"] == "done" and event["item"]["status"] == "completed" and event["item"]["id"] == sid
    assert atlas.created == [{"description": "before v2", "retentionInDays": 3}]
    classpath, kwargs = AtlasPollTrigger("atlas_api", path, "snapshot", deadline=1.0).serialize()
    assert classpath == "maintenance.triggers.atlas.AtlasPollTrigger" and kwargs["path"] == path


@pytest.mark.parametrize("says", [None, 3600], ids=["honest-expiry", "expires-earlier-than-it-says"])
def test_trigger_keeps_a_service_account_token_fresh_through_a_long_wait(atlas, monkeypatch, says):
    """Tokens live 1 s here (an hour at Atlas) and expired ones are refused; the wait lasts
    about 3 s. The token is renewed before it expires, or on the 401 when it dies early."""
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_SA", atlas.service_account_json())
    atlas.token_ttl, atlas.token_expires_in = 1.0, says
    atlas.on_demand, atlas.polls = "completed", 15
    sid = AtlasHook("atlas_sa").take_snapshot("long wait", 1)["id"]
    path = f"/api/atlas/v2/groups/{atlas.project_id}/clusters/prod/backup/snapshots/{sid}"
    started = time.time()
    event = run_trigger(AtlasPollTrigger("atlas_sa", path, "snapshot", deadline=time.time() + 30, poll_seconds=0.2))
    assert event["status"] == "done" and event["item"]["status"] == "completed", event
    assert time.time() - started > 2 * atlas.token_ttl, "the wait outlived several tokens"
    assert 2 <= len(atlas.tokens) <= 8, "renewed as they expire, not once per request"
    if says is None:
        assert atlas.unauthorized == 0, "renewed before expiry: no request was refused"
    else:
        assert atlas.unauthorized >= 1


def test_trigger_times_out_and_reports_wrong_key(atlas, monkeypatch):
    atlas.on_demand = "stuck"
    sid = AtlasHook().take_snapshot("x", 1)["id"]
    path = f"/api/atlas/v2/groups/{atlas.project_id}/clusters/prod/backup/snapshots/{sid}"
    event = run_trigger(AtlasPollTrigger("atlas_api", path, "snapshot", deadline=time.time() + 0.3, poll_seconds=0.05))
    assert event["status"] == "timeout" and event["item"]["status"] == "inProgress"
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json(private_key="bad"))
    event = run_trigger(AtlasPollTrigger("atlas_api", path, "snapshot", deadline=time.time() + 5, poll_seconds=0.05))
    assert event["status"] == "error" and event["reason"] == "unauthorized" and "atlas_api" in event["message"]
