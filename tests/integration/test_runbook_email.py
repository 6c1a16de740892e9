"""runbook_email's steps against local Mailgun/SendGrid APIs, a Statuspage and a local DNS
server answering DNSBL queries; each root cause alone is named first."""

from __future__ import annotations

import pytest

from dns_server import DnsServer
from email_servers import Mailgun, SendGrid
from maintenance.operators import runbook_email as steps_module
from runbook_fixtures import by_check, diagnosis_of, make_config, run_steps, statuspage_body
from servers import LocalServer, json_reply

STEPS = ["check_email_dashboard", "verify_api_keys", "check_blacklist_status", "review_email_logs"]
IP = "192.0.2.25"


@pytest.fixture(scope="module")
def servers():
    page = LocalServer(lambda r: json_reply(statuspage_body()))
    with Mailgun() as mailgun, SendGrid() as sendgrid, DnsServer() as dns, page:
        yield {"mailgun": mailgun, "sendgrid": sendgrid, "dns": dns, "page": page}


@pytest.fixture
def world(servers, monkeypatch):
    servers["mailgun"].healthy()
    servers["dns"].records = {("mg.test.example", "MX"): []}     # nothing listed: NXDOMAIN everywhere
    monkeypatch.setenv("AIRFLOW_CONN_MAILGUN_DEFAULT", servers["mailgun"].connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", servers["sendgrid"].connection_json())
    config = make_config(email={"provider": "mailgun", "domain": "mg.test.example"}, runbooks={
        "resolver": servers["dns"].address,
        "email": {"status_url": f"{servers['page'].url}/api/v2/summary.json", "sending_ips": [IP],
                  "dnsbl_zones": ["zen.spamhaus.org", "bl.spamcop.net"]}})
    return {**servers, "config": config}


def diagnose_world(world, params=None):
    steps = run_steps(steps_module, world["config"], STEPS, params)
    return steps, diagnosis_of("email", steps)


def test_healthy(world):
    steps, diagnosis = diagnose_world(world, {"recipient": "user1@example.net"})
    results = by_check(steps)
    assert {c: r.status for c, r in results.items()} == {
        "email.status": "ok", "email.delivery": "ok", "email.domain": "ok", "email.blocklists": "ok", "email.bounces": "ok"}
    assert results["email.delivery"].metrics["bounced_rate"] == 0.01
    assert results["email.bounces"].evidence["recipient_bounced"].startswith("yes: 550")
    assert ("25.2.0.192.zen.spamhaus.org", "A") in world["dns"].queries
    assert ("mg.test.example.dbl.spamhaus.org", "A") in world["dns"].queries
    assert diagnosis.findings == [] and diagnosis.contacts[0].name == "Mailgun Support"


def test_delivery_rates_come_from_the_metrics_api_and_from_stats_when_it_is_refused(world):
    world["mailgun"].bounced = 30
    results = by_check(diagnose_world(world)[0])
    (query,) = world["mailgun"].metric_queries
    assert query["filter"] == {"AND": [{"attribute": "domain", "comparator": "=",
                                        "values": [{"label": "mg.test.example", "value": "mg.test.example"}]}]}
    assert results["email.delivery"].metrics["bounced_rate"] == 0.03 and world["mailgun"].stats_queries == 0
    assert results["email.delivery"].evidence["source"] == "Metrics API"
    world["mailgun"].metrics_api = False          # an account without the Metrics API: the deprecated stats
    results = by_check(diagnose_world(world)[0])
    assert results["email.delivery"].metrics["bounced_rate"] == 0.03 and world["mailgun"].stats_queries == 1
    assert results["email.delivery"].evidence["source"] == "stats API (the Metrics API answered HTTP 403)"


def test_unverified_sending_domain(world):
    world["mailgun"].state = "unverified"
    world["mailgun"].records[1]["valid"] = "invalid"
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "domain_unverified"
    assert "k1._domainkey.mg.test.example (invalid)" in diagnosis.root.result.summary
    assert diagnosis.contacts[0].name == "Mailgun Support"


def test_listed_sending_ip(world):
    world["dns"].set("25.2.0.192.zen.spamhaus.org", "A", ["127.0.0.2", "127.0.0.4"])
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "ip_listed"
    assert "192.0.2.25 on zen.spamhaus.org (127.0.0.2, 127.0.0.4)" in diagnosis.root.result.summary


def test_refused_query_is_never_reported_as_listed(world):
    world["dns"].set("25.2.0.192.zen.spamhaus.org", "A", ["127.255.255.254"])
    steps, diagnosis = diagnose_world(world)
    result = by_check(steps)["email.blocklists"]
    assert (result.status, result.reason) == ("warn", "dnsbl_refused") and "listed:" not in result.summary
    world["dns"].set("25.2.0.192.zen.spamhaus.org", "A", ["127.0.0.11"])
    steps, _ = diagnose_world(world)
    assert by_check(steps)["email.blocklists"].reason == "policy_listed"


def test_listed_domain(world):
    world["dns"].set("mg.test.example.dbl.spamhaus.org", "A", ["127.0.1.2"])
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "domain_listed"


def test_bounce_rate_over_threshold(world):
    world["mailgun"].delivered, world["mailgun"].bounced = 880, 110
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "bounce_rate_high"
    assert "bounced rate 11.0% of 1000 sent in 24h is over 5.0%" in diagnosis.root.result.summary


def test_wrong_key_and_wrong_region(world, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MAILGUN_DEFAULT", world["mailgun"].connection_json(key="key-wrong-1"))
    steps, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "email_key_invalid" and "key-wrong-1" not in repr(steps)
    monkeypatch.setenv("AIRFLOW_CONN_MAILGUN_DEFAULT", world["mailgun"].connection_json())
    config = world["config"].model_copy(update={"email": world["config"].email.model_copy(update={"domain": "eu.test.example"})})
    steps = run_steps(steps_module, config, ["verify_api_keys"])
    assert by_check(steps)["email.domain"].reason == "domain_not_found"


def test_sendgrid_key_without_mail_send(world):
    world["sendgrid"].scopes = ["stats.read"]
    config = world["config"].model_copy(update={"email": world["config"].email.model_copy(
        update={"provider": "sendgrid", "domain": "test.example"})})
    steps = run_steps(steps_module, config, STEPS)
    diagnosis = diagnosis_of("email", steps)
    assert diagnosis.root.cause.reason == "key_missing_scope"
    assert by_check(steps)["email.delivery"].status == "ok" and by_check(steps)["email.domain"].status == "ok"
    assert diagnosis.contacts[0].name == "SendGrid Support"
