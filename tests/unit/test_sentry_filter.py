"""What the orchestrator lets reach Sentry: crashes, redacted and without frame locals; never a
failing check (a site finding already sent to Slack)."""

from __future__ import annotations

import sys

from maintenance.alerting import ChecksFailed
from maintenance.results import CheckResult
from maintenance.sentry_filter import scrub


def event(value):
    return {"exception": {"values": [{"type": "RuntimeError", "value": value, "stacktrace": {"frames": [
        {"function": "run_checks", "vars": {"password": "hunter2", "url": "x"}}]}}]},
        "threads": {"values": [{"stacktrace": {"frames": [{"function": "f", "vars": {"a": 1}}]}}]},
        "logentry": {"message": "GET https://u:pw@api.example/?token=abc123 failed"},
        "breadcrumbs": {"values": [{"message": "calling https://api.example/?key=crumbSECRET"}]}}


def test_a_crash_is_sent_redacted_and_without_locals():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        hint = {"exc_info": sys.exc_info()}
    sent = scrub(event("GET https://api.example/v1?api_key=SECRET42 crashed"), hint)
    value = sent["exception"]["values"][0]
    assert value["value"] == "GET https://api.example/v1?api_key=*** crashed"
    assert "vars" not in value["stacktrace"]["frames"][0] and "vars" not in sent["threads"]["values"][0]["stacktrace"]["frames"][0]
    assert "pw" not in sent["logentry"]["message"] and "abc123" not in sent["logentry"]["message"]
    assert "crumbSECRET" not in sent["breadcrumbs"]["values"][0]["message"]


def test_a_failing_check_is_not_an_orchestrator_error():
    try:
        raise ChecksFailed([CheckResult(check="home", status="fail", summary="down")])
    except ChecksFailed:
        hint = {"exc_info": sys.exc_info()}
    assert scrub(event("1 check(s) failing"), hint) is None
    assert scrub({"message": "no exception"}, {}) == {"message": "no exception"}
