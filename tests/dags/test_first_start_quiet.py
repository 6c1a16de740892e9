"""dag.test() of maintenance_weekly and maintenance_monthly on the first start (issue 17 item 8):
on a results store whose first result is minutes old, no review, report or audit of a period
that began before it says anything (nothing reaches Slack, nothing waits for the digest);
once the store holds 40 days, the reports and the audit are announced as before."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

from report_fixtures import load, stamp_for, uptime_rows
from servers import SlackReceiver

DAGS = Path(__file__).resolve().parents[2] / "dags"
ENDPOINTS = ["homepage", "api-health"]


def run(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id].test()


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_first_start_sends_nothing_about_missing_data_then_reports_with_data(airflow_db, tmp_path, monkeypatch):
    from maintenance.results import CheckResult, ResultsStore, utcnow

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = ResultsStore(url)
    now = utcnow()
    # uptime_monitor's first minutes: the only results there are
    store.record([CheckResult(check=name, status="ok", summary=f"{name}: ok", time=now - timedelta(minutes=m),
                              metrics={"response_ms": 120.0}) for name in ENDPOINTS for m in range(3)])
    config = tmp_path / "maintenance.yaml"
    config.write_text(textwrap.dedent(f"""
        site: {{name: example.org, url: "https://example.org"}}
        tasks: {{retries: 2, retry_delay: 0s}}
        heartbeat: {{late_after: {{}}}}
        results: {{conn_id: fresh_results}}
        endpoints:
          - {{name: homepage, url: "https://example.org/", conditions: ["[STATUS] == 200"]}}
          - {{name: api-health, url: "https://example.org/api/health", conditions: ["[STATUS] == 200"]}}
        reports: {{folder: {tmp_path / "reports"}}}
    """))
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(config))
    monkeypatch.setenv("AIRFLOW_CONN_FRESH_RESULTS", json.dumps({"conn_type": "sqlite",
                                                                 "extra": {"sqlalchemy_url": url}}))
    with SlackReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        weekly, monthly = run("maintenance_weekly"), run("maintenance_monthly")
        assert slack.messages == [], [m["text"] for m in slack.messages]
        assert store.outbox() == [], "nothing waits for the digest either"
        assert states(weekly)["weekly_report"] == "skipped" and states(monthly)["monthly_report"] == "skipped"
        assert states(monthly)["full_system_audit"] == "skipped"
        assert states(weekly)["review_performance_metrics"] == "skipped", states(weekly)
        assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").rglob("*.html"))
        probe = store.latest("performance.probe.homepage")
        assert probe["status"] == "skipped" and "too few to judge yet" in probe["summary"]

        # 40 days later (as far as the store knows): the same DAGs report and audit
        load(store, uptime_rows(ENDPOINTS, days=40, now=now - timedelta(hours=1), stamp=stamp_for(store), outages=1))
        weekly, monthly = run("maintenance_weekly"), run("maintenance_monthly")
    texts = [m["text"] for m in slack.messages]
    assert sum("REPORT report.weekly" in t for t in texts) == 1, texts
    assert sum("REPORT report.monthly" in t for t in texts) == 1, texts
    (audit,) = [t for t in texts if "REPORT audit.summary" in t]
    assert "homepage: " in audit and "% up over " in audit
    assert "no results this month" not in audit
    assert states(weekly)["weekly_report"] == "success" and states(monthly)["full_system_audit"] == "success"
