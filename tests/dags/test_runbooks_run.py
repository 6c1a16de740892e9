"""dag.test() of each runbook DAG against local providers: one full run each, ending in ONE
Slack diagnosis that names the injected root cause first; and an incident in uptime_monitor
that starts runbook_database once across three failing runs, its link in the alert."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from atlas_server import AtlasServer
from dns_server import DnsServer
from mongo_fixtures import mongo_server_factory  # noqa: F401
from runbook_fixtures import statuspage_body
from servers import LocalServer, SlackReceiver, json_reply, moto_server

DAGS = Path(__file__).resolve().parents[2] / "dags"
HOST = "c0.ab1cd.mongodb.net"
CONTACTS = """
contacts:
  atlas: {name: MongoDB Atlas Support, how: "https://support.mongodb.com", status_page: "https://status.mongodb.com"}
  vercel: {name: Vercel Support, how: "https://vercel.com/help"}
  stripe: {name: Stripe Support, how: "https://support.stripe.com", status_page: "https://status.stripe.com"}
  mpesa: {name: M-Pesa Support, how: "apisupport@safaricom.co.ke"}
  mailgun: {name: Mailgun Support, how: "https://help.mailgun.com", status_page: "https://status.mailgun.com"}
  storage: {name: AWS / R2 Support, how: "https://support.cloudflare.com"}
"""


def the_dag(dag_id):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]


def write_config(tmp_path, body: str) -> str:
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent("""
        site: {name: test.example, url: "https://test.example"}
        alerting: {failure_threshold: 1, success_threshold: 1, renotify_after: 4h, ui_base_url: "http://airflow.test:8080"}
        tasks: {retries: 2, retry_delay: 0s}
        heartbeat: {late_after: {}}
        results: {conn_id: test_results}
    """) + textwrap.dedent(CONTACTS) + textwrap.dedent(body))
    return str(path)


@pytest.fixture
def env(airflow_db, tmp_path, monkeypatch):
    with SlackReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'results.db'}"}}))
        yield {"slack": slack, "tmp": tmp_path, "mp": monkeypatch, "store": f"sqlite:///{tmp_path / 'results.db'}"}


def states(run):
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_runbook_database_names_the_missing_access_list_entry(env, mongo_server_factory):
    from airflow.sdk import DagRunState

    mongo = mongo_server_factory(users={"app": "pw-SECRET"})
    page = LocalServer(lambda r: json_reply(statuspage_body()))
    with AtlasServer() as atlas, page, DnsServer() as dns:
        atlas.access_list = [{"cidrBlock": "198.51.100.0/24"}]
        atlas.events = [{"id": "e2", "created": "2099-01-01T00:00:00Z", "eventTypeName": "NETWORK_PERMISSION_ENTRY_REMOVED",
                         "whitelistEntry": "203.0.113.7/32", "username": "ops@example.org"}]
        env["mp"].setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json())
        env["mp"].setenv("AIRFLOW_CONN_MONGO_DEFAULT", mongo.airflow_conn())
        env["mp"].setenv("MAINTENANCE_CONFIG", write_config(env["tmp"], f"""
            atlas: {{conn_id: atlas_api}}
            runbooks:
              resolver: "{dns.address}"
              database: {{status_url: "{page.url}/api/v2/summary.json", egress_ip: 203.0.113.7, connect_timeout_ms: 500}}
        """))
        run = the_dag("runbook_database").test()
    assert run.state == DagRunState.FAILED
    got = states(run)
    assert got["check_network_access"] == "failed" and got["check_atlas_status"] == "success"
    assert got["ping_database"] == "success" and got["verify_connection_string"] == "success"
    assert got["diagnose"] == "failed"
    messages = env["slack"].messages
    assert len(messages) == 1, [m["text"] for m in messages]
    text = messages[0]["text"]
    assert text.startswith("test.example: runbook_database: most likely cause: Our address is missing from the Atlas IP access list")
    body = json.dumps(messages[0]["blocks"])
    assert "203.0.113.7/32" in body and "ops@example.org" in body
    assert "Atlas &gt; Network Access" in body and "MongoDB Atlas Support" in body and "status.mongodb.com" in body
    assert "diagnosis run" in body and "http://airflow.test:8080/dags/runbook_database/runs/" in body
    assert "pw-SECRET" not in json.dumps(messages)


def test_runbook_with_nothing_configured_says_what_to_configure_first(env, capsys):
    """Issue 17 item 7: 4 of 5 steps skipped and the status page unreachable from the monitor."""
    from airflow.sdk import DagRunState

    from servers import free_port

    env["mp"].setenv("MAINTENANCE_CONFIG", write_config(env["tmp"], f"""
        runbooks:
          database: {{status_url: "http://127.0.0.1:{free_port()}/api/v2/summary.json", egress_ip: 203.0.113.7}}
    """))
    run = the_dag("runbook_database").test()
    task_log = capsys.readouterr().out     # dag.test() runs the tasks in-process: their log is ours
    assert run.state == DagRunState.SUCCESS      # nothing found is not a fault
    (message,) = env["slack"].messages
    header = message["blocks"][0]["text"]["text"]
    assert header == "test.example: runbook_database: 4 of 5 steps skipped, not configured: configure them first"
    body = message["blocks"][1]["text"]["text"]
    assert body.count("configure them first") == 0 and "most likely cause" not in json.dumps(message).lower()
    configure = body.splitlines()[1]
    assert configure.startswith("*Configure first:* add an atlas: section")
    assert "set Airflow connection 'mongo_default'" in configure and "`ping_database`" in configure
    assert "the monitor could not reach 127.0.0.1 (" in body and "a network problem on the monitor's side" in body
    assert "Do first" not in body and "status page not readable" not in body
    logged = task_log[task_log.index("4 of 5 steps skipped"):][:3000]
    assert "Configure first: add an atlas: section" in logged and "[skipped] verify_connection_string: not configured" in logged
    assert not any(markup in logged for markup in ("*Configure", ":white_circle:", "`", "<http", "&gt;")), logged


def test_runbook_payments_names_the_disabled_webhook(env):
    from airflow.sdk import DagRunState

    from stripe_server import Daraja, LocalStripe, StripeFront, stripe_status

    page = LocalServer(lambda r: json_reply(stripe_status()))
    with LocalStripe() as local, StripeFront(local) as front, Daraja() as daraja, page:
        front.healthy()
        front.webhook_endpoints[0]["status"] = "disabled"
        daraja.stk = {"ws_CO_42": "pending"}
        env["mp"].setenv("AIRFLOW_CONN_STRIPE_DEFAULT", front.connection_json())
        env["mp"].setenv("AIRFLOW_CONN_MPESA_DARAJA", daraja.connection_json())
        env["mp"].setenv("MAINTENANCE_CONFIG", write_config(env["tmp"], f"""
            stripe: {{conn_id: stripe_default}}
            mpesa: {{conn_id: mpesa_daraja}}
            runbooks:
              payments: {{stripe_status_url: "{page.url}/current", mpesa_shortcode: "174379"}}
        """))
        run = the_dag("runbook_payments").test(run_conf={"mpesa_checkout_request_id": "ws_CO_42"})
    assert run.state == DagRunState.FAILED
    got = states(run)
    assert got["check_webhook_logs"] == "failed" and got["verify_api_keys"] == "success"
    assert got["review_payment_logs"] == "success"          # pending is a warning, not a failure
    [message] = env["slack"].messages
    assert message["text"].startswith("test.example: runbook_payments: most likely cause: A Stripe webhook endpoint is disabled")
    body = json.dumps(message["blocks"])
    assert "we_1" in body and "Stripe Support" in body and "ws_CO_42" in body and "500.001.1001" in body
    assert "started by hand with mpesa_checkout_request_id=ws_CO_42" in body
    assert StripeFront.KEY not in json.dumps(message)


def test_runbook_email_names_the_listed_ip(env):
    from airflow.sdk import DagRunState

    from email_servers import Mailgun

    page = LocalServer(lambda r: json_reply(statuspage_body()))
    with Mailgun() as mailgun, DnsServer({("25.2.0.192.zen.spamhaus.org", "A"): ["127.0.0.2"]}) as dns, page:
        env["mp"].setenv("AIRFLOW_CONN_MAILGUN_DEFAULT", mailgun.connection_json())
        env["mp"].setenv("MAINTENANCE_CONFIG", write_config(env["tmp"], f"""
            email: {{provider: mailgun, domain: mg.test.example}}
            runbooks:
              resolver: "{dns.address}"
              email: {{status_url: "{page.url}/api/v2/summary.json", sending_ips: [192.0.2.25], dnsbl_zones: [zen.spamhaus.org]}}
        """))
        run = the_dag("runbook_email").test()
    assert run.state == DagRunState.FAILED
    assert states(run)["check_blacklist_status"] == "failed" and states(run)["verify_api_keys"] == "success"
    [message] = env["slack"].messages
    assert message["text"].startswith("test.example: runbook_email: most likely cause: A sending IP is on a DNS blocklist")
    body = json.dumps(message["blocks"])
    assert "192.0.2.25 on zen.spamhaus.org (127.0.0.2)" in body and "check.spamhaus.org" in body
    assert "Mailgun Support" in body and Mailgun.KEY not in json.dumps(message)
    from maintenance.results import ResultsStore

    stored = ResultsStore(env["store"]).run_results("runbook_email", run.run_id)
    assert "email.status" in {r.check for rs in stored.values() for r in rs}   # the shared status page judgement
    assert {r.runbook for rs in stored.values() for r in rs} == {"runbook_email"}


def test_an_incident_in_uptime_monitor_starts_runbook_database_once(env):
    """Three failing runs of uptime_monitor: one alert, one runbook_database run, linked in the alert."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    from maintenance.results import ResultsStore

    site = LocalServer(lambda r: (503, {"Content-Type": "text/plain"}, "database unavailable"))
    with site:
        env["mp"].setenv("MAINTENANCE_CONFIG", write_config(env["tmp"], f"""
            endpoints:
              - {{name: db-health, url: "{site.url}/api/health/db", group: database, critical: true, provider: atlas,
                  conditions: ["[STATUS] == 200"]}}
            runbooks: {{auto_start: {{max_runs_per_hour: 2}}}}
        """))
        dag = the_dag("uptime_monitor")
        runs = [dag.test() for _ in range(3)]
    assert [r.state for r in runs] == ["failed"] * 3
    with create_session() as session:
        started = [(r.run_id, r.run_type, r.conf) for r in session.query(DagRun).filter(
            DagRun.dag_id == "runbook_database", DagRun.run_type == "operator_triggered")]
    assert len(started) == 1, started
    run_id, run_type, conf = started[0]
    assert run_id.startswith("incident__") and run_id.endswith("__db-health") and run_type == "operator_triggered"
    assert conf["incident"]["checks"] == ["db-health"] and conf["incident"]["dag_id"] == "uptime_monitor"
    starts = ResultsStore(env["store"]).runbook_starts("runbook_database")
    assert [s["outcome"] for s in starts] == ["started"]
    alerts = [m for m in env["slack"].messages if "FAILING db-health" in m["text"]]
    assert len(alerts) == 1, [m["text"] for m in env["slack"].messages]
    blocks = json.dumps(alerts[0]["blocks"])
    assert f"http://airflow.test:8080/dags/runbook_database/runs/{run_id}|diagnosis run" in blocks


def test_runbook_file_upload_names_the_unvalidated_mime_type(env):
    import boto3
    from airflow.sdk import DagRunState

    from integration.test_runbook_file_upload import UploadApp

    app = UploadApp()
    app.enforce_type = False
    with moto_server() as url:
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing-SECRET").create_bucket(Bucket="uploads")
        with LocalServer(app) as upload:
            env["mp"].setenv("AIRFLOW_CONN_S3_UPLOADS", json.dumps({
                "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
                "extra": {"endpoint_url": url, "region_name": "us-east-1"}}))
            env["mp"].setenv("AIRFLOW_CONN_UPLOAD_APP", json.dumps({"conn_type": "http", "password": "upload-TOKEN"}))
            env["mp"].setenv("MAINTENANCE_CONFIG", write_config(env["tmp"], f"""
                storage: {{buckets: [{{name: uploads, conn_id: s3_uploads}}]}}
                runbooks:
                  file_upload: {{upload_url: "{upload.url}/api/upload", upload_conn_id: upload_app, max_upload_bytes: 4096,
                                 canary_bytes: 1024}}
            """))
            run = the_dag("runbook_file_upload").test(run_conf={"upload_key": "u/missing.png"})
    assert run.state == DagRunState.FAILED
    got = states(run)
    assert got["check_mime_validation"] == "failed" and got["test_canary_upload"] == "success"
    assert got["review_upload_logs"] == "skipped"                   # Sentry not configured: said so, not failed
    [message] = env["slack"].messages
    assert message["text"].startswith("test.example: runbook_file_upload: most likely cause: A disallowed file type is accepted")
    body = json.dumps(message["blocks"])
    assert "application/x-msdownload was accepted" in body and "The upload named is not in the bucket" in body
    assert ":large_green_circle: `verify_file_size_limits` 4096 bytes accepted, 4097 rejected (HTTP 413)" in body
    assert "Vercel Support" in body and "upload-TOKEN" not in json.dumps(message)
