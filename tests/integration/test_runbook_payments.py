"""runbook_payments' steps: the stripe SDK against localstripe (behind a front adding webhook
endpoints, pending_webhooks, revoked and restricted keys), a local Daraja, Stripe's status page,
callback URLs; each root cause alone is named first."""

from __future__ import annotations

import json
import time

import pytest

from maintenance.operators import runbook_payments as steps_module
from runbook_fixtures import by_check, diagnosis_of, make_config, run_steps
from servers import LocalServer, free_port, json_reply
from stripe_server import Daraja, LocalStripe, StripeFront, stripe_status

STEPS = ["check_payment_dashboards", "verify_api_keys", "check_webhook_logs", "review_payment_logs"]


@pytest.fixture(scope="module")
def servers():
    status = {"body": None}
    page = LocalServer(lambda r: json_reply(status["body"]))
    callback = LocalServer(lambda r: json_reply({"ResultCode": 0, "ResultDesc": "Accepted"}))
    with LocalStripe() as local, StripeFront(local) as front, Daraja() as daraja, page, callback:
        import stripe

        client = stripe.StripeClient(front.KEY, base_addresses={"api": front.url})
        for card in ("4242424242424242", "4242424242424242", "4000000000000341"):   # one declined at charge
            method = client.v1.payment_methods.create({"type": "card", "card": {
                "number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
            try:
                client.v1.payment_intents.create({"amount": 1500, "currency": "usd", "payment_method": method.id,
                                                  "confirm": True})
            except stripe.CardError:
                pass
        yield {"front": front, "daraja": daraja, "status": status, "page": page, "callback": callback}


@pytest.fixture
def world(servers, monkeypatch):
    front, daraja = servers["front"], servers["daraja"]
    front.healthy()
    front.revoked, front.restricted = set(), {}
    daraja.stk = {"ws_CO_1": "0", "ws_CO_pending": "pending", "ws_CO_cancel": "1032"}
    servers["status"]["body"] = stripe_status()
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", front.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_MPESA_DARAJA", daraja.connection_json())
    config = make_config(site={"name": "test.example", "url": "https://test.example", "environment": "staging"},
                         stripe={"conn_id": "stripe_default"}, mpesa={"conn_id": "mpesa_daraja"},
                         runbooks={"payments": {"stripe_status_url": f"{servers['page'].url}/current",
                                                "mpesa_callback_urls": [f"{servers['callback'].url}/api/mpesa/callback"],
                                                "mpesa_shortcode": "174379", "max_failed_payment_rate": 0.5}})
    return {**servers, "config": config}


def diagnose_world(world, params=None):
    steps = run_steps(steps_module, world["config"], STEPS, params)
    return steps, diagnosis_of("payments", steps)


def test_healthy(world):
    steps, diagnosis = diagnose_world(world, {"mpesa_checkout_request_id": "ws_CO_1"})
    results = by_check(steps)
    assert {c: r.status for c, r in results.items()} == {
        "payments.stripe_status": "ok", "payments.stripe_key": "ok", "payments.daraja_key": "ok",
        "payments.webhook_endpoints": "ok", "payments.pending_webhooks": "ok", "payments.mpesa_callbacks": "ok",
        "payments.failed_payments": "ok", "payments.mpesa_transaction": "ok"}
    failed = results["payments.failed_payments"]
    assert failed.evidence["payment_intents"] == 3 and failed.evidence["codes"] == {"card_declined": 1}
    assert diagnosis.findings == []
    assert [c.name for c in diagnosis.contacts] == ["Stripe Support", "M-Pesa Support"]


def test_revoked_stripe_key(world):
    world["front"].revoked.add(world["front"].KEY)
    steps, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "stripe_key_revoked"
    assert "Expired API Key" in diagnosis.root.result.summary and "runbookKEY123456" not in repr(steps)


def test_restricted_key_names_the_missing_permission(world, monkeypatch):
    key = "rk_test_restrictedKEY999"
    world["front"].restricted[key] = {"/v1/payment_intents", "/v1/events", "/v1/webhook_endpoints"}
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", world["front"].connection_json(key))
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "stripe_key_restricted"
    assert diagnosis.root.result.evidence["missing_permission"] == "rak_balance_read"


def test_disabled_webhook_endpoint(world):
    world["front"].webhook_endpoints[0]["status"] = "disabled"
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "webhook_disabled" and "we_1" in diagnosis.root.result.summary


def test_webhooks_piling_up(world):
    now = int(time.time())
    world["front"].events += [{"id": f"evt_p{i}", "object": "event", "type": "checkout.session.completed",
                               "created": now - 3600 - i * 60, "pending_webhooks": 1, "data": {"object": {}}}
                              for i in range(8)]
    world["front"].events.append({"id": "evt_new", "object": "event", "type": "invoice.paid", "created": now - 30,
                                  "pending_webhooks": 1, "data": {"object": {}}})   # in flight: not counted
    _, diagnosis = diagnose_world(world)
    root = diagnosis.root
    assert root.cause.reason == "webhooks_piling_up" and root.result.evidence["undelivered"] == 8
    assert root.result.evidence["types"] == {"checkout.session.completed": 8}


def test_daraja_key_rejected(world, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MPESA_DARAJA", world["daraja"].connection_json(secret="wrong-SECRET"))
    steps, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "daraja_key_rejected"
    assert "Invalid Authentication" in diagnosis.root.result.summary and "wrong-SECRET" not in repr(steps)


def test_stripe_incident_and_unreachable_callback(world):
    world["status"]["body"] = stripe_status("down", api="down", webhooks="degraded")
    world["config"] = world["config"].model_copy(update={"runbooks": world["config"].runbooks.model_copy(update={
        "payments": world["config"].runbooks.payments.model_copy(update={
            "mpesa_callback_urls": [f"http://127.0.0.1:{free_port()}/cb"]})})})
    _, diagnosis = diagnose_world(world)
    assert [f.cause.reason for f in diagnosis.findings] == ["provider_incident", "callback_unreachable"]
    assert diagnosis.root.result.evidence["not_up"] == {"api": "down", "webhooks": "degraded"}


def test_degraded_webhooks_status_alone_is_a_warning():
    from maintenance.checks.runbooks.payments import stripe_status as judge

    result = judge(stripe_status("degraded", webhooks="degraded"), "https://status.stripe.com/current")
    assert (result.status, result.reason) == ("warn", "provider_incident")
    assert judge({"largestatus": "up"}, "u").status == "ok" and judge("<html>", "u").reason == "status_unknown"


@pytest.mark.parametrize("checkout, status, reason", [
    ("ws_CO_pending", "warn", "mpesa_pending"), ("ws_CO_cancel", "warn", "mpesa_failed"),
    ("ws_CO_unknown", "fail", "http_4xx")])
def test_stk_push_query_results(world, checkout, status, reason):
    steps = run_steps(steps_module, world["config"], ["review_payment_logs"], {"mpesa_checkout_request_id": checkout})
    result = by_check(steps)["payments.mpesa_transaction"]
    assert (result.status, result.reason) == (status, reason), result.summary
    assert "bfb279f9aa9bdbcf158e97dd71a467cd" not in json.dumps(result.to_dict())
