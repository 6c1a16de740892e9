"""dag.test() of maintenance_daily: uptime report from the store, open alerts, the digest."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

from maintenance.alerting import assess
from maintenance.config import load_config
from maintenance.results import CheckResult, ResultsStore, utcnow
from servers import SlackReceiver

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_daily_reports_uptime_reviews_alerts_and_sends_the_digest(airflow_db, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DagRunState

    path = tmp_path / "daily.yaml"
    path.write_text(textwrap.dedent("""
        site: {name: daily.example, url: "https://daily.example"}
        endpoints:
          - {name: home, url: "https://daily.example/", critical: true, conditions: ["[STATUS] == 200"]}
          - {name: blog, url: "https://daily.example/blog", critical: false, conditions: ["[STATUS] == 200"]}
        alerting: {failure_threshold: 1}
        tasks: {retries: 2, retry_delay: 0s}
        results: {conn_id: daily_results}
    """))
    store_url = f"sqlite:///{tmp_path / 'daily.db'}"
    store, config = ResultsStore(store_url), load_config(path)
    now = utcnow()
    for i in range(12):   # the last hour of uptime_monitor: home always up, blog down for the last 15 minutes
        at = now - timedelta(minutes=60 - 5 * i)
        blog_down = i >= 9
        assess(store, config, [
            CheckResult(check="home", status="ok", summary="HTTP 200", metrics={"response_ms": 100 + i}, time=at),
            CheckResult(check="blog", status="fail" if blog_down else "ok", critical=False, time=at,
                        summary="[STATUS] (503) == 200" if blog_down else "HTTP 200",
                        reason="http_5xx" if blog_down else None),
        ], dag_id="uptime_monitor", run_id=f"r{i}", task_id="check_endpoints", now=at)

    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_DAILY_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": store_url}}))
        run = DagBag(dag_folder=str(DAGS / "maintenance_daily.py")).dags["maintenance_daily"].test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    assert states["check_uptime_status"] == "success" and states["review_critical_alerts"] == "success"
    assert states["monitor_error_logs"] == "skipped"            # no sentry: section, and it says so
    assert states["send_daily_digest"] == "success"

    # the digest: the non-critical blog outage, once
    assert len(slack.messages) == 1 and "FAILING blog" in slack.messages[0]["text"]

    rows = {r["check_name"]: r for r in store.history(run_id=run.run_id)}
    assert rows["uptime_24h.home"]["metrics"]["uptime_percent"] == 100.0
    assert rows["uptime_24h.blog"]["metrics"]["uptime_percent"] == 75.0
    assert "1 incident(s)" in rows["uptime_24h.blog"]["summary"] and "ongoing" in rows["uptime_24h.blog"]["summary"]
    assert rows["alerts.open"]["status"] == "warn" and "blog" in rows["alerts.open"]["summary"]
    assert rows["sentry.errors"]["summary"].startswith("skipped: not configured (add a sentry: section")


def test_daily_error_review_alerts_on_fatal_sentry_issues(airflow_db, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DagRunState

    from integration.test_sentry_review import TOKEN, FakeSentry
    from servers import LocalServer

    path = tmp_path / "daily.yaml"
    path.write_text(textwrap.dedent("""
        site: {name: daily.example, url: "https://daily.example"}
        alerting: {failure_threshold: 2}
        tasks: {retries: 2, retry_delay: 0s}
        results: {conn_id: daily_results}
        sentry: {max_new_issues_per_day: 10}
        contacts:
          sentry: {name: Sentry Support, how: "https://sentry.io/support/", status_page: "https://status.sentry.io"}
    """))
    app = FakeSentry([5] * 24)
    with SlackReceiver() as slack, LocalServer(app) as sentry:
        app.base = sentry.url
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_SENTRY_API", json.dumps(
            {"conn_type": "http", "host": sentry.url, "password": TOKEN, "extra": {"organization": "acme"}}))
        monkeypatch.setenv("AIRFLOW_CONN_DAILY_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'daily.db'}"}}))
        run = DagBag(dag_folder=str(DAGS / "maintenance_daily.py")).dags["maintenance_daily"].test()

    states = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert run.state == DagRunState.FAILED
    assert states["monitor_error_logs"] == ("failed", 1)        # paged from its run, not retried
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert "FAILING sentry.critical_errors" in text and "WEB-1 TypeError 1" in text
    assert "sentry.new_issues" not in text and "sentry.error_rate" not in text
    assert "Sentry Support" in json.dumps(slack.messages[0]["blocks"])
    assert TOKEN not in json.dumps(slack.messages)
