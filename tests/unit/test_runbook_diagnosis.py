"""The ranking of causes (a pure function) and the diagnosis shape, for every root cause of the
issue, from the checks' own judgements on provider-shaped data; and the auto-start circuit breaker."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from maintenance.checks.diagnosis import Cause, diagnose, rank_causes, render
from maintenance.checks.runbooks import database as db, email as em, file_upload as fu, payments as pay
from maintenance.hooks.dns import Lookup
from maintenance.results import CheckResult
from runbook_fixtures import diagnosis_of

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
OK = CheckResult(check="x.ok", status="ok", summary="fine")


def healthy_database():
    srv = Lookup("_mongodb._tcp.c0.x.net", "SRV", ["0 0 27017 h1.c0.x.net"])
    return [("check_atlas_status", [db.cluster_state({"name": "prod", "stateName": "IDLE"})]),
            ("verify_connection_string", [db.srv_records("c0.x.net", srv, Lookup("c0.x.net", "TXT", []))]),
            ("check_network_access", [db.access_list([{"cidrBlock": "203.0.113.0/24"}], "203.0.113.7", [], NOW)]),
            ("ping_database", [db.ping_ok(12.0, {})]),
            ("review_connection_logs", [db.cluster_events([], 24)])]


def replace(steps, step, results):
    return [(name, results if name == step else found) for name, found in steps]


class AuthFailed(Exception):
    code = 18


class ServerSelectionTimeoutError(Exception):
    pass


DATABASE_CASES = {
    "cluster_not_idle": ("check_atlas_status", lambda: [db.cluster_state({"name": "prod", "stateName": "REPAIRING"})]),
    "ip_not_allowed": ("check_network_access", lambda: [db.access_list([{"cidrBlock": "198.51.100.0/24"}],
                                                                       "203.0.113.7", [], NOW)]),
    "auth_failed": ("ping_database", lambda: [db.ping_failed(AuthFailed("Authentication failed."), 40, "mongo_default")]),
    "srv_missing": ("verify_connection_string", lambda: [db.srv_records(
        "c0.x.net", Lookup("_mongodb._tcp.c0.x.net", "SRV", error="nxdomain"), Lookup("c0.x.net", "TXT", error="nxdomain"))]),
}


@pytest.mark.parametrize("cause", sorted(DATABASE_CASES))
def test_each_database_cause_alone_is_named_first(cause):
    step, results = DATABASE_CASES[cause]
    diagnosis = diagnosis_of("database", replace(healthy_database(), step, results()))
    assert diagnosis.root.cause.reason == cause and diagnosis.root.step == step
    assert diagnosis.contacts[0].name == "MongoDB Atlas Support"
    assert diagnosis.headline.startswith(f"runbook_database: most likely cause: {db.CAUSES[cause].title}")


def test_a_root_cause_outranks_its_symptom():
    steps = replace(healthy_database(), "check_atlas_status",
                    [db.cluster_state({"name": "prod", "stateName": "UPDATING"})])
    steps = replace(steps, "ping_database", [db.ping_failed(ServerSelectionTimeoutError("x: timed out"), 5000, "m")])
    diagnosis = diagnosis_of("database", steps)
    assert [f.cause.reason for f in diagnosis.findings] == ["cluster_not_idle", "connect_timeout"]


def test_healthy_database_has_no_findings_and_names_whom_to_call():
    diagnosis = diagnosis_of("database", healthy_database())
    assert diagnosis.findings == [] and diagnosis.status == "ok"
    assert "every step is green" in diagnosis.headline
    body = render(diagnosis, run_url="http://a/dags/runbook_database/runs/r1")
    assert body.count(":large_green_circle:") == 5 and "MongoDB Atlas Support" in body and "diagnosis run" in body


NOW_TS = time.time()
PAYMENT_CASES = {
    "stripe_key_revoked": [pay.stripe_key_error("AuthenticationError", 401, "Expired API Key provided", "api_key_expired")],
    "webhook_disabled": [pay.webhook_endpoints([{"id": "we_1", "url": "https://x/wh", "status": "disabled"}], "x")],
    "webhooks_piling_up": [pay.pending_webhooks([{"id": f"e{i}", "type": "charge.succeeded", "pending_webhooks": 2,
                                                  "created": NOW_TS - 7200} for i in range(9)], NOW_TS, 10, 5)],
    "daraja_key_rejected": [pay.daraja_key({"errorMessage": "Invalid Authentication passed"})],
}


@pytest.mark.parametrize("cause", sorted(PAYMENT_CASES))
def test_each_payment_cause_alone_is_named_first(cause):
    healthy = [("check_payment_dashboards", [pay.stripe_status({"largestatus": "up", "statuses": {}}, "u")]),
               ("verify_api_keys", [pay.stripe_key_ok({"livemode": True}, "live", "production"),
                                    pay.daraja_key({"access_token": "t"})]),
               ("check_webhook_logs", [pay.webhook_endpoints([{"id": "we_1", "url": "https://x/wh", "status": "enabled"}], "x"),
                                       pay.pending_webhooks([], NOW_TS, 10, 5)]),
               ("review_payment_logs", [pay.failed_payments([{"status": "succeeded"}], 0.2)])]
    steps = [(name, [r for r in results if r.check != PAYMENT_CASES[cause][0].check] + (
        PAYMENT_CASES[cause] if any(r.check == PAYMENT_CASES[cause][0].check for r in results) else []))
             for name, results in healthy]
    diagnosis = diagnosis_of("payments", steps)
    assert diagnosis.root.cause.reason == cause
    assert diagnosis.contacts[0].key == ("mpesa" if cause == "daraja_key_rejected" else "stripe")


EMAIL_CASES = {
    "domain_unverified": lambda: em.mailgun_domain({"domain": {"state": "unverified"}, "sending_dns_records": [
        {"record_type": "TXT", "name": "mg.x", "valid": "invalid"}]}, "mg.x"),
    "ip_listed": lambda: em.dnsbl([("192.0.2.1", "zen.spamhaus.org", ["127.0.0.3"], None)], "mailgun"),
    "bounce_rate_high": lambda: em.delivery_rates({"sent": 100, "bounced": 9}, "mailgun", max_bounce=0.05,
                                                  max_complaint=0.01, max_failed=0.5),
}


@pytest.mark.parametrize("cause", sorted(EMAIL_CASES))
def test_each_email_cause_alone_is_named_first(cause):
    steps = [("check_email_dashboard", [em.delivery_rates({"sent": 100, "delivered": 99}, "mailgun", max_bounce=0.05,
                                                          max_complaint=0.01, max_failed=0.5)]),
             ("verify_api_keys", [em.sendgrid_scopes(["mail.send"])]),
             ("check_blacklist_status", [em.dnsbl([("192.0.2.1", "zen.spamhaus.org", [], "nxdomain")], "mailgun")]),
             ("review_email_logs", [EMAIL_CASES[cause]()])]
    assert diagnosis_of("email", steps).root.cause.reason == cause


@pytest.mark.parametrize("answers, error, verdict", [
    ([], "nxdomain", "clean"), (["127.255.255.254"], None, "refused"), (["127.255.255.252"], None, "refused"),
    (["127.0.0.10"], None, "policy"), (["127.0.0.2", "127.0.0.10"], None, "listed"), ([], "refused", "refused"),
    ([], "timeout", "unknown"), (["10.0.0.1"], None, "unknown")])
def test_dnsbl_answers(answers, error, verdict):
    assert em.classify_dnsbl(answers, error) == verdict


UPLOAD_CASES = {
    "storage_credentials": lambda: fu.head_bucket("uploads", ("unauthorized", "InvalidAccessKeyId (HTTP 403)")),
    "size_limit_not_enforced": lambda: fu.size_limit(100, (201, None), (201, None), "u"),
    "mime_not_validated": lambda: fu.mime_validation("application/x-msdownload", (200, None), "u"),
}


@pytest.mark.parametrize("cause", sorted(UPLOAD_CASES))
def test_each_upload_cause_alone_is_named_first(cause):
    steps = [("check_storage_credentials", [fu.head_bucket("uploads", None)]),
             ("verify_file_size_limits", [fu.size_limit(100, (201, None), (413, None), "u")]),
             ("check_mime_validation", [fu.mime_validation("application/x-msdownload", (415, None), "u")]),
             ("review_upload_logs", [UPLOAD_CASES[cause]()])]
    assert diagnosis_of("file_upload", steps).root.cause.reason == cause


def test_ranking_rules_warn_penalty_ties_and_unknown_reasons():
    catalogue = {"a": Cause("a", "A", 30, "do a"), "b": Cause("b", "B", 20, "do b")}
    fail_a = CheckResult(check="s1.a", status="fail", summary="a broke", reason="a")
    warn_b = CheckResult(check="s2.b", status="warn", summary="b odd", reason="b")       # 20 + 25 > 30
    odd = CheckResult(check="s3.z", status="fail", summary="who knows; more", reason="weird", provider="vercel")
    ranked = rank_causes([("s1", [OK, fail_a]), ("s2", [warn_b]), ("s3", [odd])], catalogue)
    assert [f.cause.reason for f in ranked] == ["a", "b", "weird"]
    assert ranked[2].cause.title == "who knows" and ranked[2].cause.contact == "vercel"
    tie = rank_causes([("s2", [fail_a]), ("s1", [CheckResult(check="c", status="fail", summary="", reason="a")])], catalogue)
    assert [f.step for f in tie] == ["s2", "s1"]                                            # ties keep step order


def test_a_step_that_stored_nothing_is_shown_and_never_green():
    diagnosis = diagnose("runbook_x", [("s1", [OK]), ("s2", [])], {}, {})
    assert [line.status for line in diagnosis.steps] == ["ok", "missing"]
    assert diagnosis.status == "warn" and "stored no result" in diagnosis.headline
    assert "did not run" in render(diagnosis)


def test_circuit_breaker_and_once_per_incident():
    from maintenance.alerting import Assessment, Due
    from maintenance.operators.runbook_start import start_runbooks
    from maintenance.results import ResultsStore
    from runbook_fixtures import make_config

    store = ResultsStore("sqlite://")
    config = make_config(runbooks={"auto_start": {"max_runs_per_hour": 2}})
    ti = SimpleNamespace(dag_id="uptime_monitor", run_id="r1", task_id="check_endpoints")
    triggered = []

    def trigger(dag_id, run_id, conf, note):
        triggered.append((dag_id, run_id))
        return ("exists", None) if run_id in [r for _, r in triggered[:-1]] else ("started", None)

    def incident(check, minutes_ago, group="database", kind="alert"):
        result = CheckResult(check=check, status="fail", summary="503", group=group)
        with store.engine.begin() as conn:
            outbox = store.enqueue(conn, kind=kind, payload={"kind": kind, "check": check})
        since = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        return Due(kind, result, 1, since, outbox_id=outbox)

    first = incident("db-health", 5)
    done = start_runbooks(store, config, Assessment(due=[first, incident("db-write", 4)]), {"ti": ti}, trigger)
    assert len(triggered) == 1 and done[0]["diagnosis_url"].endswith(triggered[0][1])      # one run for both
    start_runbooks(store, config, Assessment(due=[incident("homepage", 3, group="homepage"),
                                                  incident("db-health", 5, kind="reminder")]), {"ti": ti}, trigger)
    assert len(triggered) == 1                                   # no runbook for homepage; a reminder starts nothing
    start_runbooks(store, config, Assessment(due=[incident("db-replica", 2)]), {"ti": ti}, trigger)
    late = incident("db-index", 1)
    done = start_runbooks(store, config, Assessment(due=[late]), {"ti": ti}, trigger)
    assert len(triggered) == 2 and "circuit breaker" in done[0]["diagnosis_note"]
    assert [s["outcome"] for s in store.runbook_starts("runbook_database")] == ["started", "started", "suppressed"]
    payload = next(r["payload"] for r in store.outbox() if r["id"] == late.outbox_id)
    assert "circuit breaker, max 2" in payload["diagnosis_note"] and payload["diagnosis_url"]
    runbook_ti = SimpleNamespace(dag_id="runbook_database", run_id="r2", task_id="x")
    assert start_runbooks(store, config, Assessment(due=[incident("db-x", 1)]), {"ti": runbook_ti}, trigger) == []


def test_the_slack_message_names_the_cause_once_under_a_header_cut_at_a_word():
    """Issue 17 item 7: the header within Slack's 150 characters without cutting a word; the
    cause's words not repeated in the body; no empty advice for a reason the runbook lacks."""
    from maintenance.alerting.message import build_message
    from runbook_fixtures import make_config

    odd = CheckResult(check="database.ping", status="fail", reason="weird_failure",
                      summary="the driver said something nobody has catalogued yet about the replica set members "
                              "and their elections in the last hour of operation")
    steps = replace(healthy_database(), "ping_database", [odd])
    diagnosis = diagnosis_of("database", steps)
    body = render(diagnosis, run_url="http://a/r1")
    assert "Do first" not in body and "read the step's log" not in body
    assert "reason `weird_failure` is not in this runbook" in body
    payload = {"kind": "diagnosis", "summary": diagnosis.headline, "body": body, "dag_id": "runbook_database",
               "run_id": "r1", "task_id": "diagnose"}
    text, blocks = build_message([{"payload": payload}], make_config(), ui_base="http://a")
    header = blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")
    words = f"test.example: {diagnosis.headline}".split()
    assert header[:-1].split() == words[:len(header[:-1].split())], "cut at a word boundary"
    shown = json.dumps(blocks)
    assert shown.count("nobody has catalogued") == 2, shown      # header and the cause line, not the step line
    assert text.count("nobody has catalogued") == 2, text        # the fallback text: the same once more at most


def test_an_unreachable_status_page_is_the_monitors_network_never_the_cause():
    from maintenance.checks.runbooks.common import status_unreachable
    from maintenance.hooks.http_policy import ProviderError

    page = status_unreachable(ProviderError("dns", "DNS lookup failed: host name does not resolve"),
                              check="database.atlas_status", group="database", provider="atlas",
                              url="https://status.mongodb.com/api/v2/summary.json")
    assert page.status == "warn" and "network problem on the monitor's side" in page.summary
    steps = replace(healthy_database(), "check_atlas_status", [page])
    diagnosis = diagnosis_of("database", steps)
    assert diagnosis.findings == [] and diagnosis.status == "warn"
    assert "most likely cause" not in diagnosis.headline
    answered = status_unreachable(ProviderError("http_5xx", "HTTP 503"), check="database.atlas_status",
                                  group="database", provider="atlas", url="https://status.mongodb.com/x")
    assert answered.reason == "status_unknown"


def test_only_the_providers_the_findings_point_at_are_called():
    """Issue 17 item 6: an Atlas access-list fault names Atlas, not also Vercel (the runbook's
    other default contact); with nothing found the runbook's providers are listed."""
    step, results = DATABASE_CASES["ip_not_allowed"]
    diagnosis = diagnosis_of("database", replace(healthy_database(), step, results()))
    assert [c.key for c in diagnosis.contacts] == ["atlas"]
    assert "Vercel" not in render(diagnosis)
    assert [c.key for c in diagnosis_of("database", healthy_database()).contacts] == ["atlas", "vercel"]
