"""The uptime watcher's run() loop (issue 16) against a local site, with the real asset state
store (see watcher_fixtures.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from pathlib import Path

import pytest

from servers import LocalServer
from watcher_fixtures import Events, Switchable, registered_asset, state_store  # noqa: F401 - fixtures


@pytest.fixture
def site():
    app = Switchable()
    with LocalServer(app) as server:
        server.app = app
        yield server


def configure(tmp_path, monkeypatch, url: str, results_dir: Path | None = None) -> str:
    results_dir = results_dir or tmp_path
    store_url = f"sqlite:///{results_dir / 'results.db'}"
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: watch.example, url: "{url}"}}
        endpoints:
          - {{name: home, url: "{url}/?api_key=hunter2secret", group: homepage, critical: true,
              conditions: ["[STATUS] == 200"]}}
          - {{name: admin-login, url: "{url}/admin", group: admin, critical: true, conditions: ["[STATUS] == 200"],
              login: {{conn_id: admin_login, url: "{url}/admin/login"}}}}
        alerting: {{failure_threshold: 2, success_threshold: 1}}
        uptime: {{watch_interval: 10s}}
        results: {{conn_id: watcher_results}}
    """))
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_WATCHER_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": store_url}}))
    return store_url


def trigger(state_store, interval=0.2):
    from maintenance.triggers.uptime_watch import UptimeWatchTrigger

    t = UptimeWatchTrigger(interval=interval, groups=[])
    t.asset_state_store = state_store
    return t


def deliver_outbox():
    from maintenance.alerting import deliver
    from maintenance.config import get_config
    from maintenance.hooks.results_db import results_store

    config = get_config()
    assert deliver(results_store(config.results.conn_id), config) == 1


def test_alert_once_restart_neither_repages_nor_forgets_then_recovery(tmp_path, monkeypatch, site, state_store):
    from maintenance.results import ResultsStore

    store_url = configure(tmp_path, monkeypatch, site.url)

    async def scenario():
        site.app.down = True
        first = Events(trigger(state_store))
        opened = await first.next()
        await asyncio.to_thread(deliver_outbox)     # what the asset-triggered run does (no Slack: logged)
        # it keeps failing: no second event from this trigger (no infinite scheduling)
        assert await first.within(1.5) is None
        await first.stop()                          # the triggerer stops ...
        second = Events(trigger(state_store))       # ... and starts the trigger again
        assert await second.within(1.5) is None, "a restart must not page again"
        site.app.down = False
        resolved = await second.next()
        await second.stop()
        return opened, resolved

    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.2     # the triggerer warns past 0.2 s: asyncio's debug mode logs each
    slow = []
    handler = logging.Handler()
    handler.emit = lambda record: slow.append(record.getMessage()) if "took" in record.getMessage() else None
    logging.getLogger("asyncio").addHandler(handler)
    try:
        opened, resolved = loop.run_until_complete(scenario())
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
        loop.close()

    (change,) = opened["changes"]
    assert change["kind"] == "alert" and change["check"] == "home" and change["failures"] == 2
    assert change["reason"] == "http_5xx" and change["outbox_id"] is not None
    assert "hunter2secret" not in json.dumps(opened)
    (change,) = resolved["changes"]
    assert change["kind"] == "recovered" and change["check"] == "home" and change["status"] == "ok"
    assert not slow, slow

    store = ResultsStore(store_url)
    rows = store.history(check="home")
    assert len(rows) >= 5 and all(r["run_id"].startswith("watcher__") for r in rows)
    assert not store.history(check="admin-login"), "login flows stay with the 5-minute run"
    kinds = [m["kind"] for m in store.outbox() if m["check_name"] == "home"]
    assert kinds == ["alert", "recovered"]
    assert state_store.get("last_sweep")["checks"] == 1


def test_an_unannounced_event_is_replayed_after_a_restart(tmp_path, monkeypatch, site, state_store):
    """The triggerer died after the watcher committed the alert but before the event was saved."""
    configure(tmp_path, monkeypatch, site.url)

    async def scenario():
        site.app.down = True
        first = Events(trigger(state_store))
        opened = await first.next()
        await first.stop()
        second = Events(trigger(state_store))
        replayed = await second.next(timeout=5)
        await second.stop()
        return opened, replayed

    opened, replayed = asyncio.run(scenario())
    assert replayed["replayed"] is True and replayed["changes"] == opened["changes"]


def test_a_failing_sweep_is_logged_backed_off_and_the_loop_goes_on(tmp_path, monkeypatch, site, state_store, caplog):
    """The results store cannot be opened (its directory is missing): run() logs, waits longer each
    time, never raises; once the directory exists the sweeps go on and the alert opens."""
    missing = tmp_path / "not-yet"
    configure(tmp_path, monkeypatch, site.url, results_dir=missing)

    async def scenario():
        site.app.down = True
        events = Events(trigger(state_store, interval=0.2))
        assert await events.within(2.0) is None, "no event while every sweep fails"
        missing.mkdir()
        event = await events.next()
        await events.stop()
        return event

    with caplog.at_level(logging.WARNING, logger="maintenance.triggers.uptime_watch"):
        event = asyncio.run(scenario())
    failures = [r.getMessage() for r in caplog.records if "sweep failed" in r.getMessage()]
    assert len(failures) >= 2, failures
    assert "OperationalError" in failures[0] and "(1 in a row)" in failures[0] and "next try in 0.4s" in failures[0]
    assert "(2 in a row)" in failures[1] and "next try in 0.8s" in failures[1]
    assert event["changes"][0]["kind"] == "alert"


@pytest.mark.parametrize("kwargs", [
    {},
    {"interval": "soon", "groups": 7},
    {"interval": float("nan"), "groups": ["api", None, 3]},
    {"interval": -5, "groups": "api", "unknown": object()},
    {"interval": 10 ** 400, "groups": [[1]]},
])
def test_the_constructor_never_raises(kwargs):
    from maintenance.triggers.uptime_watch import UptimeWatchTrigger

    classpath, serialized = UptimeWatchTrigger(**kwargs).serialize()
    assert classpath == "maintenance.triggers.uptime_watch.UptimeWatchTrigger"
    assert 0.2 <= serialized["interval"] <= 3600
    assert all(isinstance(g, str) for g in serialized["groups"])
    json.dumps(serialized)
