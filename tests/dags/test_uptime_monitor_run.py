"""dag.test() of uptime_monitor: a healthy and a failing site, a local Slack receiver."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from servers import LocalServer, SlackReceiver

DAGS = Path(__file__).resolve().parents[2] / "dags"


def write_config(tmp_path, healthy_url: str, failing_url: str) -> str:
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: test.example, url: "{healthy_url}"}}
        endpoints:
          - {{name: healthy-home, url: "{healthy_url}/", group: homepage, critical: true,
              conditions: ["[STATUS] == 200", "[RESPONSE_TIME] < 5000"]}}
          - {{name: broken-api, url: "{failing_url}/api/health", group: api, critical: true, provider: vercel,
              conditions: ["[STATUS] == 200", "[RESPONSE_TIME] < 5000"]}}
        alerting: {{failure_threshold: 1, success_threshold: 1, renotify_after: 4h}}
        tasks: {{retries: 2, retry_delay: 0s}}
        results: {{conn_id: test_results}}
        contacts:
          vercel: {{name: Vercel Support, how: "https://vercel.com/help", status_page: "https://www.vercel-status.com"}}
    """))
    return str(path)


class Switchable:
    """A site answering 500 until `fixed` is set."""

    def __init__(self):
        self.fixed = False

    def __call__(self, request):
        return (200, {}, "ok") if self.fixed else (500, {"Content-Type": "text/plain"}, "internal error")


@pytest.fixture
def sites():
    healthy = LocalServer(lambda r: (200, {"Content-Type": "text/html"}, "<h1>Welcome</h1>"))
    failing = LocalServer(Switchable())
    with healthy, failing:
        yield healthy, failing


def uptime_dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "uptime_monitor.py")).dags["uptime_monitor"]


def test_failing_endpoint_posts_one_grouped_slack_message_then_recovery(airflow_db, tmp_path, monkeypatch, sites):
    from airflow.sdk import DagRunState

    from maintenance.results import ResultsStore

    healthy, failing = sites
    store_url = f"sqlite:///{tmp_path / 'results.db'}"
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", write_config(tmp_path, healthy.url, failing.url))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": store_url}}))
        run = uptime_dag().test()
        first_messages = list(slack.messages)
        failing.app.fixed = True
        second = uptime_dag().test()

    assert run.state == DagRunState.FAILED
    tries = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert tries["check_endpoints"][0] == "failed"
    assert tries["check_endpoints"][1] == 1, "a failing check pages from its run; task retries are for crashes"

    assert len(first_messages) == 1, first_messages
    message = first_messages[0]
    text = message["text"]
    assert "broken-api" in text and "[STATUS] (500) == 200" in text and "http_5xx" in text
    assert "healthy-home" not in text
    blocks = json.dumps(message["blocks"])
    assert "Vercel Support" in blocks and "vercel-status.com" in blocks
    assert "check_endpoints" in blocks and "uptime_monitor" in blocks and "task log" in blocks
    assert "XXXXSECRETXXXX" not in json.dumps(message)

    history = ResultsStore(store_url).history(run_id=run.run_id)
    by_check = {}
    for row in history:
        by_check.setdefault(row["check_name"], []).append(row["status"])
    assert by_check["healthy-home"] == ["ok"]
    assert by_check["broken-api"] == ["fail"]
    assert by_check["config"] == ["ok"]
    assert all(r["metrics"]["response_ms"] is not None for r in history if r["check_name"] == "healthy-home")

    # The next run finds the endpoint back: the task succeeds and sends the recovery.
    assert second.state == DagRunState.SUCCESS
    assert len(slack.messages) == 2
    assert "RECOVERED broken-api" in slack.messages[1]["text"] and "FAILING" not in slack.messages[1]["text"]


def test_crash_with_the_results_store_down_is_still_alerted(airflow_db, tmp_path, monkeypatch, sites):
    """Not a failing check but a broken task: the message says so, with the log link."""
    from airflow.sdk import DagRunState

    from servers import free_port

    healthy, failing = sites
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", write_config(tmp_path, healthy.url, failing.url))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps({"conn_type": "postgres", "extra": {
            "sqlalchemy_url": f"postgresql+psycopg2://postgres:hunter2secret@127.0.0.1:{free_port()}/nope"}}))
        run = uptime_dag().test()
    assert run.state == DagRunState.FAILED
    # both tasks need the store: one message per crashed task, after its last try
    texts = sorted(m["text"] for m in slack.messages)
    assert len(texts) == 2, texts
    assert "uptime_monitor.check_endpoints" in texts[0] and "cross_check_external_monitors" in texts[1]
    for text in texts:
        assert "TASK CRASHED" in text and "OperationalError: (psycopg2.OperationalError)" in text
        assert "results store unavailable" in text and "Background on this error" not in text
    assert all("task log" in json.dumps(m["blocks"]) for m in slack.messages)
    assert "hunter2secret" not in json.dumps(slack.messages)


def test_a_site_never_seen_names_exactly_the_failing_critical_endpoints(airflow_db, tmp_path, monkeypatch, sites):
    from servers import free_port

    healthy, failing = sites
    dead = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: new-site.example, url: "{healthy.url}"}}
        endpoints:
          - {{name: home, url: "{healthy.url}/", group: homepage, critical: true,
              conditions: ["[STATUS] == 200", "[BODY] == pat(*Welcome*)"]}}
          - {{name: about, url: "{healthy.url}/about", critical: true, conditions: ["[STATUS] < 400"]}}
          - {{name: api-health, url: "{healthy.url}/api/health", group: api, critical: true,
              conditions: ["[STATUS] == 200", "[BODY].status == ok"]}}
          - {{name: admin, url: "{dead}/admin/login", group: admin, critical: true, conditions: ["[STATUS] == 200"]}}
          - {{name: payments, url: "{failing.url}/api/payments/health", group: payments, critical: true,
              provider: stripe, conditions: ["[STATUS] == any(200, 204)"]}}
          - {{name: blog, url: "{failing.url}/blog", critical: false, conditions: ["[STATUS] == 200"]}}
        alerting: {{failure_threshold: 1}}
        tasks: {{retries: 2, retry_delay: 0s}}
        results: {{conn_id: test_results}}
        contacts:
          stripe: {{name: Stripe Support, how: "https://support.stripe.com", status_page: "https://status.stripe.com"}}
    """))
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'site.db'}"}}))
        uptime_dag().test()
    assert len(slack.messages) == 1
    lines = slack.messages[0]["text"].splitlines()
    assert lines[0] == "new-site.example: 3 failing"
    failing_lines = {line.split(":")[0].removeprefix("FAILING "): line for line in lines[1:]}
    assert set(failing_lines) == {"api-health", "admin", "payments"}          # not home, about, or blog (digest)
    assert "[BODY].status (missing) == ok" in failing_lines["api-health"] and "reason: body" in failing_lines["api-health"]
    assert "connection refused" in failing_lines["admin"] and "reason: refused" in failing_lines["admin"]
    assert "[STATUS] (500) == any(200, 204)" in failing_lines["payments"]
    assert "Stripe Support" in json.dumps(slack.messages[0]["blocks"])


def test_an_invalid_config_edit_alerts_once_keeps_monitoring_then_recovers(airflow_db, tmp_path, monkeypatch, sites):
    """Prometheus-style reload: the last valid config keeps running; Slack names file, key and error."""
    import os

    from airflow.sdk import DagRunState

    from maintenance import config as config_module

    healthy, failing = sites
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))   # where the last valid copy is kept
    path = write_config(tmp_path, healthy.url, failing.url)
    good = Path(path).read_text()
    failing.app.fixed = True
    store_url = f"sqlite:///{tmp_path / 'results.db'}"
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", path)
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": store_url}}))
        try:
            assert uptime_dag().test().state == DagRunState.SUCCESS and slack.messages == []
            Path(path).write_text(good.replace("[RESPONSE_TIME] < 5000", "[RESPONSE_TIME] < fast"))
            os.utime(path, (1, 1))
            broken = uptime_dag().test()            # the DAG still imports, on the last valid config
            failing.app.fixed = False               # an outage while the file is still broken...
            still_broken = uptime_dag().test()
            Path(path).write_text(good)
            fixed = uptime_dag().test()
        finally:
            config_module._cache.clear()
    assert broken.state == DagRunState.FAILED
    first = slack.messages[0]["text"]
    assert "FAILING config" in first and path in first and "endpoints[0].conditions" in first and "needs a number" in first
    assert "FAILING broken-api" not in first
    # ...is still seen: the endpoints kept being checked on the last valid config.
    assert "FAILING broken-api" in slack.messages[1]["text"] and "config" not in slack.messages[1]["text"].split("\n")[1]
    assert fixed.state == DagRunState.FAILED      # broken-api still down, but the config recovered
    assert any("RECOVERED config" in m["text"] for m in slack.messages[2:])
    assert sum("FAILING config" in m["text"] for m in slack.messages) == 1
