"""Self-watch: heartbeat pings, the deadline alert and its Slack message, results retention."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import timedelta
from types import SimpleNamespace

from pathlib import Path

import pytest

from maintenance import heartbeat
from maintenance.config import Heartbeat
from servers import LocalServer, SlackReceiver, free_port

DAGS = Path(__file__).resolve().parents[2] / "dags"
SCHEDULED = ("uptime_monitor", "maintenance_daily", "maintenance_weekly", "maintenance_monthly", "airflow_db_cleanup")


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    def write(extra: str = "") -> None:
        path = tmp_path / "maintenance.yaml"
        path.write_text(textwrap.dedent("""
            site: {name: test.example, url: "https://test.example"}
            results: {conn_id: test_results}
        """) + textwrap.dedent(extra))
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'results.db'}"}}))
    write()
    return write


@pytest.fixture
def ping_server(monkeypatch):
    with LocalServer(lambda r: (200, {"Content-Type": "text/plain"}, "OK")) as server:
        monkeypatch.setenv("AIRFLOW_CONN_HEARTBEAT", json.dumps(
            {"conn_type": "http", "host": f"{server.url}/ping/0f0e"}))
        yield server


def test_ping_endpoints_follow_healthchecks_conventions():
    settings = Heartbeat(slugs={"uptime_monitor": "/uptime/"})
    assert heartbeat.ping_endpoint(settings, "uptime_monitor", "start") == "uptime/start"
    assert heartbeat.ping_endpoint(settings, "uptime_monitor", "success") == "uptime"
    assert heartbeat.ping_endpoint(settings, "uptime_monitor", "fail") == "uptime/fail"
    assert heartbeat.ping_endpoint(settings, "maintenance_daily", "success") == ""
    assert heartbeat.ping_endpoint(settings, "maintenance_daily", "fail") == "fail"


def test_pings_reach_the_heartbeat_connection(config_file, ping_server):
    config_file("heartbeat: {slugs: {uptime_monitor: uptime}}\n")
    dag = SimpleNamespace(dag_id="uptime_monitor", roots=[SimpleNamespace(task_id="b"), SimpleNamespace(task_id="a")])
    heartbeat.on_run_start({"dag": dag, "ti": SimpleNamespace(task_id="a", try_number=1)})
    heartbeat.on_run_start({"dag": dag, "ti": SimpleNamespace(task_id="b", try_number=1)})   # not the first root
    heartbeat.on_run_start({"dag": dag, "ti": SimpleNamespace(task_id="a", try_number=2)})   # a retry
    heartbeat.on_dag_success({"dag": dag})
    heartbeat.on_dag_failure({"dag": SimpleNamespace(dag_id="maintenance_daily")})
    assert [r.path for r in ping_server.requests] == ["/ping/0f0e/uptime/start", "/ping/0f0e/uptime",
                                                      "/ping/0f0e/fail"]


def test_no_connection_no_ping(config_file, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HEARTBEAT", raising=False)
    assert heartbeat.ping("uptime_monitor", "success") is False


def test_a_heartbeat_endpoint_that_is_down_never_raises(config_file, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HEARTBEAT", json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}/ping"}))
    assert heartbeat.ping("uptime_monitor", "fail") is False
    with LocalServer(lambda r: (503, {}, "down")) as server:
        monkeypatch.setenv("AIRFLOW_CONN_HEARTBEAT", json.dumps({"conn_type": "http", "host": server.url}))
        assert heartbeat.ping("uptime_monitor", "success") is False
        assert len(server.requests) == heartbeat.PING_ATTEMPTS


def test_scheduled_dags_watch_themselves():
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(DAGS)).dags
    for dag_id, dag in dags.items():
        scheduled = dag_id in SCHEDULED
        assert (_listed(dag.on_success_callback) == [heartbeat.on_dag_success]) is scheduled, dag_id
        assert (_listed(dag.on_failure_callback) == [heartbeat.on_dag_failure]) is scheduled, dag_id
        assert bool(dag.deadline) is scheduled, dag_id
        if scheduled:
            (alert,) = dag.deadline
            assert alert.callback.path == "maintenance.deadlines.run_is_late"
            assert alert.callback.kwargs["dag_id"] == dag_id
            assert all(_listed(t.on_execute_callback) == [heartbeat.on_run_start] for t in dag.tasks)


def _listed(callbacks):
    return callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []


def test_late_run_posts_one_slack_message_even_if_the_trigger_runs_twice(config_file, monkeypatch):
    from maintenance.deadlines import run_is_late

    with SlackReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        context = {"dag_run": {"dag_run_id": "scheduled__2026-11-28T03:00:00+00:00"},
                   "deadline": {"deadline_time": "2026-11-28T04:00:00+00:00"}}
        assert asyncio.run(run_is_late(dag_id="maintenance_daily", late_after="1h", context=context)) == 1
        assert asyncio.run(run_is_late(dag_id="maintenance_daily", late_after="1h", context=context)) == 0
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert "RUN LATE" in text and "maintenance_daily" in text and "1h after it was queued" in text
    assert "XXXXSECRETXXXX" not in json.dumps(slack.messages)


def test_a_failed_run_past_its_deadline_is_not_late(config_file, monkeypatch):
    """Airflow keeps a failed run's deadline (it prunes on success only), so its callback fires
    after the run ended: seen for every red uptime_monitor run (benchmarks/time_to_alert.py)."""
    from maintenance.deadlines import run_is_late

    with SlackReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        ended = {"dag_run": {"dag_run_id": "scheduled__2026-11-28T03:00:00+00:00", "state": "failed"},
                 "deadline": {"deadline_time": "2026-11-28T03:10:00+00:00"}}
        assert asyncio.run(run_is_late(dag_id="uptime_monitor", late_after="10m", context=ended)) == 0
        running = {**ended, "dag_run": {**ended["dag_run"], "state": "running"}}
        assert asyncio.run(run_is_late(dag_id="uptime_monitor", late_after="10m", context=running)) == 1
    assert [m["text"].count("RUN LATE") for m in slack.messages] == [1]


def test_prune_results_keeps_retention_days(config_file, tmp_path):
    from datetime import datetime, timezone

    from maintenance.hooks.results_db import results_store
    from maintenance.operators.housekeeping import PruneResultsOperator
    from maintenance.results import CheckResult

    config_file("results: {conn_id: test_results, retention_days: 30}\n")
    store = results_store("test_results")
    now = datetime.now(timezone.utc)
    store.record([CheckResult("old", "ok", "old", time=now - timedelta(days=31)),
                  CheckResult("new", "ok", "new", time=now - timedelta(days=29))])
    assert PruneResultsOperator(task_id="prune").execute({}) == 1
    assert [r["check_name"] for r in store.history()] == ["new"]
