"""The deployments watcher's run() (issue 19) against the Vercel stand-in, with Airflow's own asset
state store (deploy_fixtures.py): each deploy announced exactly once across a triggerer restart."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from deploy_fixtures import deploy_asset, deploy_state_store, write_config  # noqa: F401 - fixtures
from vitals_server import VercelServer, deployment
from watcher_fixtures import Events


@pytest.fixture
def vercel(tmp_path, monkeypatch):
    with VercelServer(page_size=2) as server:
        path = tmp_path / "maintenance.yaml"
        write_config(path, """
            site: {name: deploy.example, url: "https://deploy.example"}
            vercel: {conn_id: vercel_api, watch_interval: 10s}
        """)
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", server.connection_json(project_id="prj_1"))
        yield server


def trigger(state_store, interval=0.2):
    from maintenance.triggers.vercel_deployments import VercelDeploymentsTrigger

    t = VercelDeploymentsTrigger(interval=interval)
    t.asset_state_store = state_store
    return t


def now_ms(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1000)


def test_each_deploy_announced_once_across_a_restart(vercel, deploy_state_store):
    vercel.add(deployment("dpl_old1", now_ms(-3600)))
    vercel.add(deployment("dpl_old2", now_ms(-1800), state="ERROR"))
    vercel.add(deployment("dpl_preview", now_ms(-60), target="preview"))

    async def scenario():
        first = Events(trigger(deploy_state_store))
        while not vercel.queries:                        # the first poll ...
            assert await first.within(0.1) is None
        assert await first.within(1.0) is None, "... announces nothing that existed before it"
        vercel.add(deployment("dpl_a", now_ms(-30)))
        a = await first.next(timeout=5)
        building = vercel.add(deployment("dpl_b", now_ms(-20), state="BUILDING"))
        assert await first.within(0.8) is None, "a building deployment is not announced"
        await first.stop()                               # the triggerer stops ...
        building["readyState"] = building["state"] = "ERROR"   # ... dpl_b fails while it is down
        vercel.add(deployment("dpl_c", now_ms(-10)))
        second = Events(trigger(deploy_state_store))     # ... and starts the trigger again
        b = await second.next(timeout=5)
        c = await second.next(timeout=5)
        assert await second.within(1.0) is None, "nothing announced twice"
        await second.stop()
        third = Events(trigger(deploy_state_store))
        assert await third.within(1.0) is None, "a second restart announces nothing again"
        await third.stop()
        return a, b, c

    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.2     # the triggerer warns past 0.2 s: asyncio's debug mode logs each
    slow = []
    handler = logging.Handler()
    handler.emit = lambda record: slow.append(record.getMessage()) if "took" in record.getMessage() else None
    logging.getLogger("asyncio").addHandler(handler)
    try:
        a, b, c = loop.run_until_complete(scenario())
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
        loop.close()
    assert not slow, f"the event loop was blocked: {slow}"
    assert (a["uid"], a["state"]) == ("dpl_a", "READY")
    assert (b["uid"], b["state"]) == ("dpl_b", "ERROR") and (c["uid"], c["state"]) == ("dpl_c", "READY")
    assert a["sha"] and a["url"] == "https://web-dpl_a.vercel.app" and a["inspector_url"]
    assert all(q.get("target") == ["production"] for q in vercel.queries if "target" in q)
    assert any("until" in q for q in vercel.queries), "the list is paged (pagination.next passed back as until)"
    assert "vercel-token" not in json.dumps([a, b, c])


def test_no_connection_polls_nothing_and_a_failing_poll_backs_off(vercel, deploy_state_store, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_VERCEL_API")

    async def idle():
        events = Events(trigger(deploy_state_store))
        assert await events.within(0.8) is None
        await events.stop()

    with caplog.at_level(logging.INFO, logger="maintenance.triggers.vercel_deployments"):
        asyncio.run(idle())
    assert [r.getMessage() for r in caplog.records].count(
        "deployments watcher: polling nothing: no Airflow connection 'vercel_api'") == 1, "logged once"
    assert not vercel.queries

    caplog.clear()
    monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json(token="wrong-token"))

    async def refused():
        events = Events(trigger(deploy_state_store, interval=0.2))
        assert await events.within(1.2) is None
        await events.stop()

    with caplog.at_level(logging.WARNING, logger="maintenance.triggers.vercel_deployments"):
        asyncio.run(refused())
    failures = [r.getMessage() for r in caplog.records if "poll failed" in r.getMessage()]
    assert failures and "(1 in a row)" in failures[0] and "next try in 0.4s" in failures[0]
    assert "HTTP 403" in failures[0] and "wrong-token" not in " ".join(failures)


@pytest.mark.parametrize("kwargs", [{}, {"interval": "soon"}, {"interval": float("nan")}, {"interval": 10 ** 400},
                                    {"interval": -1, "unknown": object()}, {"interval": None}])
def test_the_constructor_never_raises(kwargs):
    from maintenance.triggers.vercel_deployments import VercelDeploymentsTrigger

    classpath, serialized = VercelDeploymentsTrigger(**kwargs).serialize()
    assert classpath == "maintenance.triggers.vercel_deployments.VercelDeploymentsTrigger"
    assert list(serialized) == ["interval"] and 0.2 <= serialized["interval"] <= 3600
    json.dumps(serialized)
