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

from atlas_server import AtlasServer
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
    with SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        weekly, monthly = run("maintenance_weekly"), run("maintenance_monthly")
    for dag_run in (weekly, monthly):
        assert dag_run.state == DagRunState.SUCCESS, states(dag_run)
        assert set(states(dag_run).values()) == {"skipped"}, states(dag_run)
    assert slack.messages == []
    rows = {r["check_name"]: r["summary"] for r in ResultsStore(results_conn).history()}
    assert "add a dependencies: section" in rows["dependencies.scan"]
    assert "add a security_scan: section" in rows["security.scan"]
    assert "connection 'crux_api'" in rows["performance.cwv"]
    assert "connection 'vercel_api'" in rows["performance.vercel.deployments"]
    assert "add endpoints:" in rows["performance.probe"]
    assert all(s.startswith("skipped:") for s in rows.values()), rows


def test_every_provider_configured_each_finding_reaches_slack_once(airflow_db, tmp_path, monkeypatch, results_conn):
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
    store = ResultsStore(results_conn)
    now = utcnow()
    store.record([CheckResult(check="home", status="ok", summary="", time=now - timedelta(hours=h),
                              metrics={"response_ms": 150 + h % 3}) for h in range(1, 24 * 14, 12)])
    now_ms = int(now.timestamp() * 1000)
    with SlackReceiver() as slack, OsvServer([advisory("GHSA-next-1", "next", "npm", ["15.0.1"], fixed="15.0.3",
                                                       severity="CRITICAL", aliases=["CVE-2026-0001"])]) as osv, \
            RegistryServer(npm={"next": "15.0.3"}) as registry, VitalsServer() as vitals, VercelServer() as vercel, \
            AtlasServer() as atlas, LocalServer(site, ssl_context=context) as shop:
        vitals.records["https://shop.example"] = crux_record("https://shop.example", 4800, 150, "0.02")
        vercel.deployments = [deployment("good", now_ms - 40 * 3_600_000),
                              deployment("bad", now_ms - 20 * 3_600_000, "ERROR")]
        atlas.access_list.append({"cidrBlock": "0.0.0.0/0", "comment": "opened by hand"})
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
        """))
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_CRUX_API", vitals.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json())
        weekly = run("maintenance_weekly")
        weekly_messages = list(slack.messages)
        monthly = run("maintenance_monthly")
    assert weekly.state == DagRunState.FAILED
    assert states(weekly) == {"review_performance_metrics": "failed", "check_backup_status": "success",
                              "review_security_logs": "skipped", "check_dependency_updates": "failed"}
    texts = sorted(m["text"] for m in weekly_messages)
    assert len(texts) == 2, texts
    deps = next(t for t in texts if "dependencies" in t)
    assert "FAILING dependencies.vulnerabilities.web" in deps and "GHSA-next-1 (CVE-2026-0001) critical" in deps
    perf = next(t for t in texts if "performance" in t)
    assert "FAILING performance.cwv.shop.example" in perf and "LCP 4800 ms poor" in perf
    assert "FAILING performance.vercel.deployments" in perf and "https://vercel.com/acme/web/bad" in perf
    assert "runbook maintenance_weekly" in json.dumps([m["blocks"] for m in weekly_messages])

    # monthly: the same vulnerability is no longer new; the exposed file and the open access list page
    assert monthly.state == DagRunState.FAILED
    monthly_states = states(monthly)
    assert monthly_states["dependency_updates"] == "success" and monthly_states["security_scan"] == "failed"
    assert monthly_states["full_system_audit"] == "skipped"
    monthly_texts = [m["text"] for m in slack.messages[len(weekly_messages):]]
    security = next(t for t in monthly_texts if "security" in t)
    assert "/.git/config: git config served" in security and "0.0.0.0/0 (opened by hand)" in security
    assert "dependencies.vulnerabilities.web" not in " ".join(monthly_texts)
    all_text = json.dumps(slack.messages)
    for secret in ("vercel-token-SECRET", "AIzaTestKEY123", "atlas-private-SECRET", "XXXXSECRETXXXX"):
        assert secret not in all_text
