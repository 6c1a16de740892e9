"""The monthly audit against local servers: one credential probe per configured provider (Atlas
with Digest auth, Sentry, Stripe, Daraja, Vercel, UptimeRobot, Pingdom, CrUX, SendGrid, Cloudflare
R2, moto's S3, MongoDB over its wire protocol), each classified ok / unauthorized / unreachable /
error; and the month's record read back from a results store seeded with a month of results."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from atlas_server import AtlasServer, CloudflareServer
from email_servers import Mailgun
from integration.test_storage import s3  # noqa: F401 - fixture: a client and connection to moto's S3
from mongo_fixtures import mongo_auth_server, mongo_server_factory  # noqa: F401
from servers import LocalServer, free_port, json_reply
from vitals_server import VercelServer

from maintenance.reports.data import report_period
from maintenance.config import MaintenanceConfig
from maintenance.operators.audit import credential_checks, month_record
from maintenance.results import CheckResult, ResultsStore, utcnow

SECRETS = ("sntrys-SECRET", "sk_test_WRONG_SECRET", "daraja-SECRET", "SG.sendgrid-SECRET", "atlas-private-WRONG",
           "ur-SECRET", "crux-KEY-SECRET", "s3cret", "testing-SECRET", "cf-token-SECRET")


class Apis:
    """Sentry, Stripe, Daraja, UptimeRobot (always 503), SendGrid and CrUX (no record) on one server."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request):
        path = urlsplit(request.path).path
        self.calls.append(path)
        auth = request.headers.get("Authorization", "")
        if path == "/api/0/organizations/acme/":
            if auth != "Bearer sntrys-SECRET":
                return json_reply({"detail": "Invalid token"}, 401)
            return json_reply({"id": "1", "slug": "acme", "name": "Acme"})
        if path == "/v1/balance":
            if auth != "Bearer sk_test_good":
                return json_reply({"error": {"type": "invalid_request_error",
                                             "message": "Invalid API Key provided: sk_test_***CRET"}}, 401)
            return json_reply({"object": "balance", "livemode": False, "available": [], "pending": []})
        if path == "/oauth/v1/generate":
            if auth != "Basic " + base64.b64encode(b"consumer:daraja-SECRET").decode():
                return json_reply({"errorCode": "400.008.01", "errorMessage": "Invalid Authentication passed"}, 400)
            return json_reply({"access_token": "tok", "expires_in": "3599"})
        if path == "/v3/monitors":
            return 503, {"Content-Type": "text/html"}, "<html>upstream unavailable</html>"
        if path == "/v3/scopes":
            if auth != "Bearer SG.sendgrid-SECRET":
                return json_reply({"errors": [{"field": None, "message": "authorization required"}]}, 401)
            return json_reply({"scopes": ["mail.send", "stats.read"]})
        if path == "/v1/records:queryRecord":
            return json_reply({"error": {"code": 404, "message": "chrome ux report data not found",
                                         "status": "NOT_FOUND"}}, 404)
        return json_reply({"detail": "not found"}, 404)


@pytest.fixture
def providers(monkeypatch, s3, mongo_auth_server):  # noqa: F811 - fixtures
    s3.create_bucket(Bucket="files")
    with LocalServer(Apis()) as apis, AtlasServer() as atlas, CloudflareServer() as cloudflare, \
            VercelServer() as vercel:
        def http(conn_id, **fields):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields}))

        http("sentry_api", host=apis.url, password="sntrys-SECRET", extra={"organization": "acme"})
        http("stripe_default", host=apis.url, password="sk_test_WRONG_SECRET")
        http("mpesa_daraja", host=apis.url, login="consumer", password="daraja-SECRET")
        http("uptimerobot_api", host=apis.url, password="ur-SECRET")
        http("pingdom_api", host=f"http://127.0.0.1:{free_port()}", password="pd-SECRET")   # nobody listens
        http("crux_api", host=apis.url, password="crux-KEY-SECRET")
        http("sendgrid_default", host=apis.url, password="SG.sendgrid-SECRET")
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json(private_key="atlas-private-WRONG"))
        monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_API", cloudflare.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json(token="vercel-token-WRONG"))
        for key, value in mongo_auth_server.airflow_env("mongo_default").items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AIRFLOW_CONN_MONGO_APP_AUDIT", mongo_auth_server.airflow_conn(password="not-the-password"))
        monkeypatch.delenv("AIRFLOW_CONN_MAILGUN_DEFAULT", raising=False)
        yield


def config(**sections):
    return MaintenanceConfig.model_validate({"site": {"name": "shop", "url": "https://shop.example"}, **sections})


def test_every_configured_provider_answers_one_call_classified(providers):
    cfg = config(atlas={"restore_test": False}, sentry={}, stripe={}, mpesa={}, vercel={}, uptimerobot={},
                 pingdom={}, performance={}, email={"provider": "sendgrid"},
                 security_logs={"mongo_conn_id": "mongo_app_audit"},
                 storage={"buckets": [{"name": "files", "conn_id": "s3_test"}, {"name": "gone", "conn_id": "s3_test"},
                                      {"name": "media", "kind": "r2"}]})
    results = {r.check.removeprefix("audit.credentials."): r for r in credential_checks(cfg)}
    outcome = {name: (r.status, r.evidence.get("outcome")) for name, r in results.items()}
    assert outcome == {
        "atlas": ("fail", "unauthorized"), "sentry": ("ok", "ok"), "stripe": ("fail", "unauthorized"),
        "mpesa": ("ok", "ok"), "vercel": ("fail", "unauthorized"), "uptimerobot": ("warn", "unreachable"),
        "pingdom": ("warn", "unreachable"), "crux": ("ok", "ok"), "sendgrid": ("ok", "ok"),
        "s3:files": ("ok", "ok"), "s3:gone": ("fail", "error"), "r2:media": ("ok", "ok"),
        "mongo:mongo_default": ("ok", "ok"), "mongo:mongo_app_audit": ("fail", "unauthorized"),
    }, outcome
    assert results["uptimerobot"].reason == "http_5xx" and results["pingdom"].reason == "refused"
    assert "check the credentials of connection 'atlas_api'" in results["atlas"].summary
    assert "AuthenticationFailed (code 18)" in results["mongo:mongo_app_audit"].summary
    assert "no record" in results["crux"].summary and "acme" in results["sentry"].summary
    text = json.dumps([r.to_dict() for r in results.values()])
    for secret in SECRETS:
        assert secret not in text


def test_the_mailgun_probe_asks_the_api_the_runbook_uses(monkeypatch):
    # The probe goes through hooks/email.py's MailgunHook (user "api", the key as password).
    with Mailgun(domain="mg.shop.example") as mailgun:
        monkeypatch.setenv("AIRFLOW_CONN_MAILGUN_DEFAULT", mailgun.connection_json())
        (good,) = credential_checks(config(email={"provider": "mailgun", "domain": "mg.shop.example"}))
        monkeypatch.setenv("AIRFLOW_CONN_MAILGUN_DEFAULT", mailgun.connection_json(key="key-WRONG-SECRET"))
        (bad,) = credential_checks(config(email={"provider": "mailgun", "domain": "mg.shop.example"}))
    assert (good.status, good.evidence["outcome"]) == ("ok", "ok"), good.summary
    assert "for mg.shop.example" in good.summary
    assert (bad.status, bad.evidence["outcome"]) == ("fail", "unauthorized"), bad.summary
    assert "key-WRONG-SECRET" not in json.dumps(bad.to_dict())


def test_a_section_without_its_connection_is_skipped_naming_it(monkeypatch):
    for name in ("MAILGUN_DEFAULT", "MONGO_DEFAULT"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{name}", raising=False)
    (result,) = credential_checks(config(email={"provider": "mailgun", "domain": "mg.shop.example"}))
    assert result.status == "skipped" and "connection 'mailgun_default' does not exist" in result.summary
    (nothing,) = credential_checks(MaintenanceConfig.model_validate({"site": {"name": "s", "url": "https://s"}}))
    assert nothing.status == "skipped" and nothing.reason == "not_configured"


def test_the_month_is_read_back_from_the_results_store(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    start, end, _ = report_period("monthly", utcnow())   # the audit's month is the monthly report's
    at = start + timedelta(hours=1)
    rows = []
    for i in range(24 * 12):       # a day of 5-minute checks with one 20-minute outage
        status = "fail" if 100 <= i < 104 else "ok"
        rows.append(CheckResult(check="home", status=status, summary="", reason="timeout" if status == "fail" else None,
                                time=at + timedelta(minutes=5 * i), metrics={"response_ms": 120}))
    rows.append(CheckResult(check="home", status="fail", summary="", time=start - timedelta(days=2)))   # last month
    for day in range(20):
        rows.append(CheckResult(check="sentry.error_rate", status="ok", summary="", time=start + timedelta(days=day),
                                metrics={"errors_24h": 500}))
        rows.append(CheckResult(check="sentry.error_rate", status="ok", summary="", time=start - timedelta(days=day + 1),
                                metrics={"errors_24h": 200}))
    rows += [CheckResult(check="atlas.restore_archive", status="ok", group="backups", summary="restored",
                         time=start + timedelta(days=1)),
             CheckResult(check="dependencies.vulnerabilities.web", status="warn", summary="",
                         time=start - timedelta(days=3), metrics={"vulnerabilities": 2, "sev_critical": 1, "sev_low": 1}),
             CheckResult(check="security.headers.shop.example", status="ok", summary="", time=start + timedelta(days=1),
                         evidence={"grade": "B+", "previous_grade": "B+"})]
    store.record(rows)
    cfg = config(endpoints=[{"name": "home", "url": "https://shop.example/", "conditions": ["[STATUS] == 200"]}],
                 sentry={}, atlas={}, dependencies={}, security_scan={})
    results = {r.check: r for r in month_record(store, cfg, start, end)}
    home = results["audit.uptime.home"]
    assert home.metrics["checks"] == 288 and home.metrics["incidents"] == 1
    assert home.metrics["downtime_total_s"] == 1200 and home.metrics["mttr_s"] == 1200
    assert home.metrics["uptime_percent"] == pytest.approx(100 * 284 / 288, abs=0.001)
    errors = results["audit.errors"]
    assert (errors.status, errors.metrics["errors_per_day"], errors.metrics["errors_per_day_last_month"]) == \
        ("warn", 500, 200)
    assert results["audit.backups"].metrics["verified_ok"] == 1
    vulns = results["audit.vulnerabilities"]
    assert (vulns.status, vulns.metrics["open"], vulns.metrics["sev_critical"]) == ("warn", 2, 1)
    assert results["audit.security"].summary == "security: grade shop.example B+"
    bare = month_record(store, config(), start, end)
    assert {r.status for r in bare} == {"skipped"} and len(bare) == 5


def test_a_bucket_that_answers_403_is_refused_credentials(monkeypatch):
    # HeadBucket has no body: only the status says the key may not read the bucket.
    with LocalServer(lambda request: (403, {"Content-Length": "0"}, "")) as server:
        monkeypatch.setenv("AIRFLOW_CONN_S3_DENIED", json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing-SECRET",
            "extra": {"endpoint_url": server.url, "region_name": "us-east-1"}}))
        (result,) = credential_checks(config(storage={"buckets": [{"name": "files", "conn_id": "s3_denied"}]}))
    assert (result.status, result.reason) == ("fail", "unauthorized"), result.summary
    assert "testing-SECRET" not in json.dumps(result.to_dict())
