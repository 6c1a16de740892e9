"""dag.test() of uptime_monitor runs started by the uptime watcher's asset events (issue 16)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import timedelta

import pytest

from servers import LocalServer, SlackReceiver
from dags.test_uptime_monitor_run import uptime_dag
from watcher_fixtures import Events, Switchable, registered_asset, state_store  # noqa: F401 - fixtures


@pytest.fixture
def site():
    app = Switchable()
    with LocalServer(app) as server:
        server.app = app
        yield server


def configure(tmp_path, monkeypatch, url, slack) -> str:
    store_url = f"sqlite:///{tmp_path / 'results.db'}"
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: watch.example, url: "{url}"}}
        endpoints:
          - {{name: db-health, url: "{url}/api/health/db", group: database, critical: true,
              conditions: ["[STATUS] == 200"]}}
        alerting: {{failure_threshold: 2, success_threshold: 1}}
        uptime: {{watch_interval: 10s}}
        tasks: {{retries: 2, retry_delay: 0s}}
        results: {{conn_id: test_results}}
    """))
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": store_url}}))
    return store_url


def watcher_events(state_store, site) -> list[dict]:
    """Two events from the real trigger: the alert opens (2 failed sweeps), then it resolves."""
    from maintenance.triggers.uptime_watch import UptimeWatchTrigger

    async def scenario():
        trigger = UptimeWatchTrigger(interval=0.2)
        trigger.asset_state_store = state_store
        events = Events(trigger)
        site.app.down = True
        opened = await events.next()
        site.app.down = False
        resolved = await events.next()
        await events.stop()
        return [opened, resolved]

    return asyncio.run(scenario())


def consume_in_next_run(monkeypatch, payloads):
    """Record the events as the triggerer does (Trigger.submit_event -> register_asset_change), and
    let the next dag.test() run consume them, as the scheduler's asset-triggered run would."""
    from airflow.assets.manager import AssetManager
    from airflow.models import dagrun
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.name == "uptime_watcher"))
        ids = [AssetManager.register_asset_change(asset=asset.to_serialized(), session=session,
                                                  extra={"from_trigger": True, "payload": p}).id for p in payloads]

    original = dagrun.get_or_create_dagrun

    def with_consumed_events(*args, session, **kwargs):
        from airflow.models.asset import AssetEvent

        run = original(*args, session=session, **kwargs)
        run.consumed_asset_events.extend(session.scalars(select(AssetEvent).where(AssetEvent.id.in_(ids))))
        session.commit()
        return run

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", with_consumed_events)


def test_a_run_consuming_a_failure_and_its_recovery_sends_one_failing_and_one_recovered(
        tmp_path, monkeypatch, site, state_store):
    from airflow.sdk import DagRunState

    from maintenance.results import ResultsStore

    with SlackReceiver() as slack:
        store_url = configure(tmp_path, monkeypatch, site.url, slack)
        payloads = watcher_events(state_store, site)
        assert [c["kind"] for p in payloads for c in p["changes"]] == ["alert", "recovered"]
        assert not slack.messages, "the watcher itself sends nothing"
        consume_in_next_run(monkeypatch, payloads)
        run = uptime_dag().test()

    assert run.state == DagRunState.SUCCESS, "the incident it announced is closed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"check_endpoints": "success", "cross_check_external_monitors": "skipped"}
    text = "\n".join(m["text"] for m in slack.messages)
    assert text.count("FAILING db-health") == 1 and text.count("RECOVERED db-health") == 1, text
    assert len(slack.messages) == 1, "one grouped message"
    blocks = json.dumps(slack.messages[0]["blocks"])
    assert run.run_id in blocks and "check_endpoints" in blocks, "the message links the run that sent it"
    store = ResultsStore(store_url)
    assert not store.history(run_id=run.run_id), "an asset-triggered run sweeps nothing itself"
    starts = store.runbook_starts("runbook_database")
    assert [s["outcome"] for s in starts] == ["started"], starts
    assert all(m["delivered_at"] for m in store.outbox())


def test_a_silent_watcher_pages_once_from_the_5_minute_run_and_recovers_when_samples_flow(
        airflow_db, tmp_path, monkeypatch, site):
    """Watch the watcher: its newest sample is older than 3 intervals (10 s here) -> uptime.watcher
    fails at once, naming the likely causes; the run is red, so the heartbeat's /fail ping follows."""
    from airflow.sdk import DagRunState

    from maintenance.results import CheckResult, ResultsStore, utcnow

    pings = []
    heartbeat = LocalServer(lambda request: (pings.append(request.path) or 200, {}, "OK"))
    with SlackReceiver() as slack, heartbeat:
        store_url = configure(tmp_path, monkeypatch, site.url, slack)
        monkeypatch.setenv("AIRFLOW_CONN_HEARTBEAT", json.dumps({"conn_type": "http", "host": heartbeat.url}))
        with open(tmp_path / "maintenance.yaml", "a") as config:
            config.write("heartbeat: {slugs: {uptime_monitor: uptime}, late_after: {}}\n")
        store = ResultsStore(store_url)

        def watcher_sample(age_s):
            store.record([CheckResult(check="db-health", status="ok", summary="HTTP 200",
                                      time=utcnow() - timedelta(seconds=age_s))], dag_id="uptime_monitor",
                         run_id=f"watcher__{age_s}", task_id="check_endpoints")

        watcher_sample(45)        # the watcher stopped 45 s ago: more than 3 x 10 s
        silent = uptime_dag().test()
        still = uptime_dag().test()
        watcher_sample(0)         # it sweeps again
        back = uptime_dag().test()

    assert silent.state == DagRunState.FAILED and still.state == DagRunState.FAILED
    assert back.state == DagRunState.SUCCESS
    texts = [m["text"] for m in slack.messages]
    assert len(texts) == 2, texts     # paged once (the second silent run is the same incident), recovered once
    assert "FAILING uptime.watcher" in texts[0] and "db-health" not in texts[0]
    for cause in ("the triggerer is down", "the trigger is crashing", "uptime_monitor is paused"):
        assert cause in texts[0]
    assert "RECOVERED uptime.watcher" in texts[1]
    assert pings.count("/uptime/fail") == 2 and pings.count("/uptime") == 1, pings


def test_an_outage_seen_by_the_watcher_and_the_5_minute_run_is_paged_once_and_recovered_once(
        tmp_path, monkeypatch, site, state_store):
    """One alert state per check, whichever path judged it."""
    from airflow.sdk import DagRunState

    from maintenance.triggers.uptime_watch import UptimeWatchTrigger

    with SlackReceiver() as slack:
        configure(tmp_path, monkeypatch, site.url, slack)
        trigger = UptimeWatchTrigger(interval=0.2)
        trigger.asset_state_store = state_store
        events = Events(trigger)
        loop = asyncio.new_event_loop()
        try:
            site.app.down = True
            opened = loop.run_until_complete(events.next())
            with monkeypatch.context() as patch:
                consume_in_next_run(patch, [opened])
                announced = uptime_dag().test()          # the watcher's run: FAILING at once
            cron_down = uptime_dag().test()              # the 5-minute run sees the same outage
            site.app.down = False
            resolved = loop.run_until_complete(events.next())
            with monkeypatch.context() as patch:
                consume_in_next_run(patch, [resolved])
                recovered = uptime_dag().test()          # RECOVERED at once
            cron_up = uptime_dag().test()
            assert loop.run_until_complete(events.within(1.0)) is None
            loop.run_until_complete(events.stop())
        finally:
            loop.close()

    assert announced.state == DagRunState.FAILED and cron_down.state == DagRunState.FAILED
    assert recovered.state == DagRunState.SUCCESS and cron_up.state == DagRunState.SUCCESS
    text = "\n".join(m["text"] for m in slack.messages)
    assert text.count("FAILING db-health") == 1 and text.count("RECOVERED db-health") == 1, text
