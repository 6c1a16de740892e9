"""dag.test() of maintenance_weekly and maintenance_monthly: with every provider configured
against local servers (each finding reaches Slack once, with its runbook), and with none
configured (every task skipped, saying which section or connection to configure)."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from atlas_server import AtlasServer, iso
from mongo_fixtures import mongo_auth_server, mongo_server_factory  # noqa: F401 - fixtures
from osv_server import OsvServer, RegistryServer, advisory
from servers import LocalServer, SlackReceiver, free_port
from vitals_server import VercelServer, VitalsServer, crux_record, deployment

# no deadlines under dag.test(): Airflow 3.3.2's dag.test hands DagRun.update_state the
# unserialized deadline definitions, and a successful run then fails looking them up by id.
DAGS = Path(__file__).resolve().parents[2] / "dags"
BASE = """
    site: {name: shop.example, url: "https://shop.example"}
    alerting: {failure_threshold: 1}
    tasks: {retries: 2, retry_delay: 0s}
    heartbeat: {late_after: {}}
    results: {conn_id: review_results}
    contacts:
      vercel: {name: Vercel Support, how: "https://vercel.com/help"}
      atlas: {name: MongoDB Atlas Support, how: "https://support.mongodb.com"}
"""


def run(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id].test()


REPORT_TASKS = {"weekly_report", "monthly_report", "run_outcome", "traffic_analytics", "app_analytics"}


def review_states(dag_run):
    """The review tasks' states (the reports and analytics have tests of their own)."""
    return {k: v for k, v in states(dag_run).items() if k not in REPORT_TASKS}


def alerts(messages):
    """Slack messages that are not the reports' announcements."""
    return [m for m in messages if "REPORT report." not in m["text"]]


def states(dag_run):
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


@pytest.fixture
def results_conn(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_REVIEW_RESULTS", json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": url}}))
    return url


def test_nothing_configured_every_review_task_is_skipped_saying_how(airflow_db, tmp_path, monkeypatch, results_conn):
    from airflow.sdk import DagRunState

    from maintenance.results import ResultsStore

    path = tmp_path / "bare.yaml"
    path.write_text(textwrap.dedent(BASE))
    # a store older than the periods (a new one skips the month's audit: nothing to review yet)
    from maintenance.results import CheckResult, utcnow
    ResultsStore(results_conn).record([CheckResult(check="old", status="ok", summary="ok",
                                                   time=utcnow() - timedelta(days=70))])
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        weekly, monthly = run("maintenance_weekly"), run("maintenance_monthly")
    for dag_run in (weekly, monthly):
        assert dag_run.state == DagRunState.SUCCESS, states(dag_run)
        assert set(review_states(dag_run).values()) == {"skipped"}, states(dag_run)
    assert alerts(slack.messages) == []
    rows = {r["check_name"]: r["summary"] for r in ResultsStore(results_conn).history()
            if not r["check_name"].startswith(("report.", "analytics.", "old"))}
    assert "add a dependencies: section" in rows["dependencies.scan"]
    assert "add a security_scan: section" in rows["security.scan"]
    assert "connection 'crux_api'" in rows["performance.cwv"]
    assert "connection 'vercel_api'" in rows["performance.vercel.deployments"]
    assert "add endpoints:" in rows["performance.probe"]
    assert "nothing to audit: add endpoints: and the provider sections" in rows["audit.full"]
    assert "performance.vercel.deployments: add a vercel: section" in rows["audit.full"]   # from the weekly run
    assert all(s.startswith("skipped:") for s in rows.values()), rows
    assert "add a security_logs: section" in rows["security.logs"]
    assert not any("not implemented" in s for s in rows.values()), rows


def test_every_provider_configured_each_finding_reaches_slack_once(airflow_db, tmp_path, monkeypatch, results_conn,
                                                                  mongo_auth_server):  # noqa: F811
    from airflow.sdk import DagRunState

    from maintenance.results import CheckResult, ResultsStore, utcnow

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    def site(request):
        if request.path == "/.git/config":
            return 200, {"Content-Type": "text/plain"}, "[core]\n\tbare = false\n"
        return 200, {"Content-Type": "text/html", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                     "Content-Security-Policy": "default-src 'self'", "Strict-Transport-Security": "max-age=31536000"}, \
            "<html><body>shop</body></html>"

    lock = tmp_path / "package-lock.json"
    lock.write_text(json.dumps({"lockfileVersion": 3, "packages": {
        "": {"dependencies": {"next": "^15"}}, "node_modules/next": {"version": "15.0.1"}}}))
    from maintenance.reports.data import report_period

    store = ResultsStore(results_conn)
    now = utcnow()
    month_start, month_end, _ = report_period("monthly", now)   # the audit's month
    home_times = [now - timedelta(hours=h) for h in range(1, 24 * 70, 12)]
    store.record([CheckResult(check="home", status="ok", summary="", time=at, metrics={"response_ms": 150 + i % 3})
                  for i, at in enumerate(home_times)])
    home_in_month = sum(1 for at in home_times if month_start <= at < month_end)
    now_ms = int(now.timestamp() * 1000)
    # the app's admin audit log: a role raised to admin nobody planned, and routine actions
    mongo_auth_server.seed("app", "admin_audit", [
        {"user": "ann", "action": "refund", "timestamp": now - timedelta(days=1)},
        {"user": "ann", "action": "role_change", "target_user": "mallory", "new_role": "admin",
         "timestamp": now - timedelta(days=2)}])
    for key, value in mongo_auth_server.airflow_env("mongo_default").items():
        monkeypatch.setenv(key, value)

    def stripe(request):   # a revoked key: the audit finds it
        return 401, {"Content-Type": "application/json"}, json.dumps(
            {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_live_***KED"}})

    with SlackReceiver() as slack, LocalServer(stripe) as stripe_api, OsvServer([advisory("GHSA-next-1", "next", "npm", ["15.0.1"], fixed="15.0.3",
                                                       severity="CRITICAL", aliases=["CVE-2026-0001"])]) as osv, \
            RegistryServer(npm={"next": "15.0.3"}) as registry, VitalsServer() as vitals, VercelServer() as vercel, \
            AtlasServer() as atlas, LocalServer(site, ssl_context=context) as shop:
        vitals.records["https://shop.example"] = crux_record("https://shop.example", 4800, 150, "0.02")
        vercel.deployments = [deployment("good", now_ms - 40 * 3_600_000),
                              deployment("bad", now_ms - 20 * 3_600_000, "ERROR")]
        atlas.access_list.append({"cidrBlock": "0.0.0.0/0", "comment": "opened by hand"})
        # last month's scan: the audit reads the calendar month before its run (this run's scan is next month's)
        store.record([CheckResult(check=f"security.headers.{shop.url.split('//')[1]}", status="ok", summary="grade A",
                                  time=month_start + timedelta(days=1), evidence={"grade": "A"})])
        atlas.events = [{"id": "e1", "created": iso(now - timedelta(days=1)), "eventTypeName": "API_KEY_CREATED",
                         "username": "bob@shop.example", "targetPublicKey": "newkey12"},
                        {"id": "e2", "created": iso(now - timedelta(days=2)), "eventTypeName": "MONGODB_USER_UPDATED",
                         "username": "carol@shop.example", "dbUserUsername": "reporting"}]
        path = tmp_path / "all.yaml"
        path.write_text(textwrap.dedent(BASE) + textwrap.dedent(f"""
            endpoints:
              - {{name: home, url: "https://shop.example/", conditions: ["[STATUS] == 200"]}}
            vercel: {{conn_id: vercel_api}}
            performance: {{min_probe_samples: 3}}
            atlas: {{conn_id: atlas_api, restore_test: false}}
            dependencies:
              own_requirements: false
              osv_url: {osv.url}
              npm_url: {registry.url}
              pypi_url: {registry.url}
              lock_files: [{{name: web, path: {lock}}}]
            security_scan:
              ca_file: {ca_file}
              sites: [{{url: "{shop.url}/", http_url: "http://127.0.0.1:{free_port()}/"}}]
              check_buckets: false
            stripe: {{conn_id: stripe_default}}
            security_logs: {{collection: admin_audit}}
        """))
        monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", json.dumps(
            {"conn_type": "http", "host": stripe_api.url, "password": "sk_live_REVOKED"}))
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_CRUX_API", vitals.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json())
        weekly = run("maintenance_weekly")
        weekly_messages = alerts(slack.messages)
        monthly = run("maintenance_monthly")
    assert weekly.state == DagRunState.FAILED
    assert review_states(weekly) == {"review_performance_metrics": "failed", "check_backup_status": "success",
                              "review_security_logs": "failed", "check_dependency_updates": "failed"}
    texts = sorted(m["text"] for m in weekly_messages)
    assert len(texts) == 3, texts
    logs = next(t for t in texts if "security.logs" in t)
    assert "FAILING security.logs.atlas" in logs and "new API key: API_KEY_CREATED newkey12 by bob@shop.example" in logs
    assert "FAILING security.logs.role_changes" in logs and "mallory made admin by ann" in logs
    digest = [r["payload"]["summary"] for r in store.outbox() if r["channel"] == "digest"
              and r["check_name"] == "security.logs.summary"]
    assert len(digest) == 1 and digest[0].startswith("Security logs") and "MONGODB_USER_UPDATED reporting by carol" \
        in digest[0] and "admin log: 2 action(s) by 1 user(s)" in digest[0]
    deps = next(t for t in texts if "dependencies" in t)
    assert "FAILING dependencies.vulnerabilities.web" in deps and "GHSA-next-1 (CVE-2026-0001) critical" in deps
    perf = next(t for t in texts if "performance" in t)
    assert "FAILING performance.cwv.shop.example" in perf and "LCP 4800 ms poor" in perf
    assert "FAILING performance.vercel.deployments" in perf and "https://vercel.com/acme/web/bad" in perf
    assert "runbook maintenance_weekly" in json.dumps([m["blocks"] for m in weekly_messages])

    # monthly: the same vulnerability is no longer new; the exposed file and the open access list page
    assert monthly.state == DagRunState.FAILED
    monthly_states = review_states(monthly)
    # the vulnerability is still in the lock file: still failing (its incident open), not paged again
    assert monthly_states["dependency_updates"] == "failed" and monthly_states["security_scan"] == "failed"
    monthly_texts = [m["text"] for m in alerts(slack.messages)[len(weekly_messages):]]
    # the audit: the revoked Stripe key pages (one alert); the month's record is one report
    assert monthly_states["full_system_audit"] == "failed"
    (report,) = [t for t in monthly_texts if "REPORT audit.summary" in t]
    assert "Monthly audit" in report and "1 failing" in report and "credentials 4/5 ok" in report
    assert "[fail] stripe: credentials refused (unauthorized)" in report
    assert f"home: 100.00% up over {home_in_month} checks; 0 incident(s)" in report
    assert "vulnerabilities: 1 open (1 critical)" in report and "security: grade 127.0.0.1" in report, report
    assert "skipped for want of configuration" in report
    (skipped,) = [r for r in store.history() if r["check_name"] == "audit.not_configured"]
    assert any(s["check"] == "storage.buckets" and "add storage: buckets:" in s["how"]   # weekly's
               for s in skipped["evidence"]["checks"]), skipped["evidence"]
    assert "[skipped] errors: not configured (add a sentry: section" in report
    (audit_alert,) = [t for t in monthly_texts if "FAILING audit.credentials.stripe" in t]
    assert "check the credentials of connection 'stripe_default'" in audit_alert
    stored = {r["check_name"]: r for r in store.history() if r["check_name"].startswith("audit.")}
    assert stored["audit.uptime.home"]["metrics"]["uptime_percent"] == 100.0
    assert stored["audit.summary"]["metrics"]["credentials"] == 5
    security = next(t for t in monthly_texts if "FAILING security" in t)
    assert "/.git/config: git config served" in security and "0.0.0.0/0 (opened by hand)" in security
    assert "dependencies.vulnerabilities.web" not in " ".join(monthly_texts)
    all_text = json.dumps(slack.messages)
    for secret in ("vercel-token-SECRET", "AIzaTestKEY123", "atlas-private-SECRET", "XXXXSECRETXXXX", "sk_live_REVOKED",
                   "s3cret"):
        assert secret not in all_text
