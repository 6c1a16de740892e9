"""dag.test() of maintenance_weekly: traffic from a local Plausible server, the weekly report
rendered from the results store, uploaded through S3Hook to moto's server (older reports
pruned), and announced in Slack with its link."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from analytics_servers import PlausibleServer
from mongo_fixtures import mongo_auth_server, mongo_default_conn, mongo_server_factory  # noqa: F401
from maintenance.results import ResultsStore
from report_fixtures import daily_family_results, load, stamp_for, uptime_rows
from servers import SlackReceiver

DAGS = Path(__file__).resolve().parents[2] / "dags"
ENDPOINTS = ["homepage", "api-health"]
BUCKET = "ops-reports"


@pytest.fixture
def env(airflow_db, tmp_path, monkeypatch, moto_url, mongo_default_conn):  # noqa: F811
    now = datetime.now(timezone.utc)
    week_start = datetime.combine(now.date(), datetime.min.time(), tzinfo=timezone.utc) - timedelta(days=7)
    # signups collapse: 3 this week against 40 the week before (an anomaly for the digest)
    mongo_default_conn.seed("app", "members", [{"created_at": week_start + timedelta(hours=5 + 40 * i)} for i in range(3)]
                            + [{"created_at": week_start - timedelta(hours=4 * i + 1)} for i in range(40)])
    url = f"sqlite:///{tmp_path / 'results.db'}"
    store = ResultsStore(url)
    load(store, uptime_rows(ENDPOINTS, days=10, now=now - timedelta(minutes=10), stamp=stamp_for(store), outages=2))
    store.record(daily_family_results(days=10, now=now))
    config = tmp_path / "maintenance.yaml"
    config.write_text(textwrap.dedent(f"""
        site: {{name: example.org, url: "https://example.org"}}
        tasks: {{retries: 2, retry_delay: 0s}}
        heartbeat: {{late_after: {{}}}}
        results: {{conn_id: test_results}}
        endpoints:
          - {{name: homepage, url: "https://example.org/", critical: true, conditions: ["[STATUS] == 200"]}}
          - {{name: api-health, url: "https://example.org/api/health", critical: true, conditions: ["[STATUS] == 200"]}}
        analytics:
          plausible: {{site_id: example.org}}
          app: {{database: app, signups: {{collection: members}}}}
        reports:
          bucket: {BUCKET}
          conn_id: s3_reports
          prefix: maintenance-reports/
          link_base: https://reports.example.org/ops
          retention_days: 365
    """))
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing-SECRET")
    s3.create_bucket(Bucket=BUCKET)
    with PlausibleServer() as plausible, SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(config))
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps({"conn_type": "sqlite",
                                                                    "extra": {"sqlalchemy_url": url}}))
        monkeypatch.setenv("AIRFLOW_CONN_PLAUSIBLE_API", plausible.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_S3_REPORTS", json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
            "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}}))
        yield {"s3": s3, "slack": slack, "plausible": plausible, "store": store}


def age_object(key: str, days: int) -> None:
    """Make a stored object look `days` old (moto's backend, in this process)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(BUCKET, key)
    stored.last_modified = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days)


def test_weekly_report_uploaded_to_s3_and_announced(env):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DagRunState

    s3, slack = env["s3"], env["slack"]
    s3.put_object(Bucket=BUCKET, Key="maintenance-reports/weekly/example.org-weekly-2024-W01.html", Body=b"old")
    age_object("maintenance-reports/weekly/example.org-weekly-2024-W01.html", 700)
    s3.put_object(Bucket=BUCKET, Key="maintenance-reports/notes.txt", Body=b"not a report")
    age_object("maintenance-reports/notes.txt", 700)

    dag = DagBag(dag_folder=str(DAGS / "maintenance_weekly.py")).dags["maintenance_weekly"]
    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    assert states["traffic_analytics"] == "success" and states["weekly_report"] == "success"
    assert states["app_analytics"] == "success", "an anomaly is a warning, not a failure"
    assert states["run_outcome"] == "skipped"

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    reports = [k for k in keys if k.startswith("maintenance-reports/weekly/") and k.endswith(".html")]
    assert len(reports) == 1 and "2024-W01" not in reports[0], "the old report was pruned, the new one kept"
    assert "maintenance-reports/notes.txt" in keys, "only reports are pruned"
    head = s3.head_object(Bucket=BUCKET, Key=reports[0])
    assert head["ContentType"].startswith("text/html")
    html = s3.get_object(Bucket=BUCKET, Key=reports[0])["Body"].read().decode()
    for title in ("Daily uptime per endpoint", "Response time per day: homepage", "Visitors and page views per day",
                  "Error events per day (Sentry)"):
        assert f'alt="{title}"' in html, title

    assert len(slack.messages) == 1, slack.messages
    text = json.dumps(slack.messages[0])
    name = reports[0].removeprefix("maintenance-reports/")
    assert "REPORT report.weekly" in slack.messages[0]["text"]
    assert f"https://reports.example.org/ops/{name}" in text and "uptime" in text
    assert "testing-SECRET" not in text and PlausibleServer.key not in text
    assert "membership signups down 92% (3 against 40 the week before)" in html
    digest = [m for m in env["store"].outbox() if m["channel"] == "digest"]
    assert [m["check_name"] for m in digest] == ["analytics.weekly.signups"], "the anomaly waits for the daily digest"
    assert digest[0]["delivered_at"] is None
    stored = {r["check_name"]: r for r in env["store"].history(run_id=run.run_id)}
    assert stored["report.weekly"]["status"] == "ok"
    assert stored["analytics.weekly.traffic"]["metrics"]["visitors"] > 0
