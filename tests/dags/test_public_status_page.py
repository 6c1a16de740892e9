"""The opt-in public status page (issue 17, item 13): written by uptime_monitor's run (dag.test()
against local sites) to a folder, and to S3 through moto; only the listed checks; no target,
summary, reason, evidence or Airflow link in it; rendered in headless Chromium."""

from __future__ import annotations

import json
import logging
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from browser import ARTIFACTS, Browser, chromium
from servers import LocalServer, SlackReceiver

DAGS = Path(__file__).resolve().parents[2] / "dags"
SECRET_PATH = "/api/health?token=s3cr3t-T0KEN"


def write_config(tmp_path: Path, healthy: str, failing: str, publish_to: str, extra: str = "",
                 conn_id: str | None = None) -> Path:
    conn = f", conn_id: {conn_id}" if conn_id else ""
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: Example Org, url: "{healthy}"}}
        endpoints:
          - {{name: homepage, url: "{healthy}/", group: homepage, critical: true, conditions: ["[STATUS] == 200"]}}
          - {{name: api, url: "{failing}{SECRET_PATH}", group: api, critical: true, conditions: ["[STATUS] == 200"]}}
          - {{name: admin-login, url: "{healthy}/admin", group: api, critical: false, conditions: ["[STATUS] == 200"]}}
        alerting: {{failure_threshold: 1, success_threshold: 1, renotify_after: 4h}}
        tasks: {{retries: 2, retry_delay: 0s}}
        results: {{conn_id: test_results}}
        maintenance_windows:
          - {{start: "{(datetime.now(timezone.utc) + timedelta(days=2)).isoformat()}", duration: 1h,
              endpoints: [homepage], reason: "secret vendor migration"}}
        status_page:
          public: {{publish_to: "{publish_to}", checks: [homepage, api], title: Example Org{conn}}}
    """) + extra)
    return path


@pytest.fixture
def sites():
    healthy = LocalServer(lambda r: (200, {"Content-Type": "text/html"}, "<h1>Welcome</h1>"))
    failing = LocalServer(lambda r: (500, {"Content-Type": "text/plain"}, "internal error: db password=hunter2"))
    with healthy, failing:
        yield healthy, failing


def assert_public(html: str, failing_url: str) -> None:
    assert 'data-check="homepage" data-state="up"' in html and 'data-check="api" data-state="down"' in html
    assert "admin-login" not in html, "only the listed checks"
    host = failing_url.split("//", 1)[1]
    for leak in (host, "127.0.0.1", "s3cr3t-T0KEN", "internal error", "hunter2", "HTTP 500", "http_5xx",
                 "secret vendor migration", "maintenance-status", "/dags/", "<a ", "<script", "src=\"http"):
        assert leak not in html, leak
    assert "Planned maintenance" in html, "the window's times are public, its reason is not"


def test_uptime_run_writes_the_public_page_to_a_folder(airflow_db, tmp_path, monkeypatch, sites):
    from airflow.dag_processing.dagbag import DagBag

    healthy, failing = sites
    public = tmp_path / "public"
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(write_config(tmp_path, healthy.url, failing.url, str(public))))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'results.db'}"}}))
        run = DagBag(dag_folder=str(DAGS / "uptime_monitor.py")).dags["uptime_monitor"].test()
    assert {ti.task_id: ti.state for ti in run.get_task_instances()}["check_endpoints"] == "failed", "api pages"
    html = (public / "index.html").read_text()
    assert_public(html, failing.url)
    assert "api is down." in html and "ongoing" in html
    assert "Checked every 30s by our monitoring" in html, "the watcher's interval (default 30 s), not the cron's"
    if chromium() is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    with Browser(1000, 900) as browser:
        browser.open((public / "index.html").as_uri())
        text = browser.evaluate("document.body.innerText")
        assert "Example Org status" in text and "api is down." in text and "Operational" in text
        assert browser.evaluate("document.links.length + document.scripts.length") == 0
        bars = browser.evaluate("Array.from(document.querySelectorAll('section.check')).map("
                                "s => [s.dataset.check, s.querySelectorAll('rect').length, "
                                "Math.round(s.querySelector('svg.bars').getBoundingClientRect().width)])")
        assert [(name, count) for name, count, _ in bars] == [("homepage", 90), ("api", 90)]
        assert all(width > 800 for _, _, width in bars), bars
        browser.screenshot(ARTIFACTS / "public-status-page-after-uptime-run.png", full_page=True)


def test_public_page_to_s3_through_the_storage_connection(airflow_db, tmp_path, monkeypatch, sites, moto_url):
    from maintenance.config import load_config
    from maintenance.operators.uptime import publish_public_page
    from maintenance.results import CheckResult, ResultsStore

    healthy, failing = sites
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing-SECRET")
    s3.create_bucket(Bucket="example-public")
    storage = "storage: {buckets: [{name: example-public, conn_id: public_site}]}\n"
    config = load_config(write_config(tmp_path, healthy.url, failing.url, "s3://example-public/status/", storage))
    monkeypatch.setenv("AIRFLOW_CONN_PUBLIC_SITE", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
        "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}}))
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'results.db'}"}}))
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    now = datetime.now(timezone.utc)
    store.record([CheckResult(check="homepage", status="ok", summary="HTTP 200", target=healthy.url, time=now),
                  CheckResult(check="api", status="fail", summary="HTTP 500: internal error: db password=hunter2",
                              reason="http_5xx", target=f"{failing.url}{SECRET_PATH}",
                              evidence={"body": "hunter2"}, time=now)])
    where = publish_public_page(config, logging.getLogger("test"))
    assert where == "s3://example-public/status/index.html"
    stored = s3.get_object(Bucket="example-public", Key="status/index.html")
    assert stored["ContentType"].startswith("text/html")
    assert_public(stored["Body"].read().decode(), failing.url)


def test_a_storage_fault_is_a_warning_not_the_sweeps_failure(airflow_db, tmp_path, monkeypatch, sites, moto_url,
                                                             caplog):
    from maintenance.config import load_config
    from maintenance.operators.uptime import publish_public_page

    healthy, failing = sites
    config = load_config(write_config(tmp_path, healthy.url, failing.url, "s3://no-such-bucket/status",
                                      conn_id="public_site"))
    monkeypatch.setenv("AIRFLOW_CONN_PUBLIC_SITE", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
        "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}}))
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'results.db'}"}}))
    with caplog.at_level(logging.WARNING, logger="test"):
        assert publish_public_page(config, logging.getLogger("test")) is None
    message = caplog.records[-1].getMessage()
    assert message == "public status page not written to s3://no-such-bucket/status: NoSuchBucket (HTTP 404)"
    assert "testing-SECRET" not in caplog.text
