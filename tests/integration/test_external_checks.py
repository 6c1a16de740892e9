"""UptimeRobot / Pingdom cross-check and payment-provider reachability, against local servers
that answer in the providers' API shapes (provider-apis.md sections 3, 4, 9)."""

from __future__ import annotations

import base64
import json

import pytest

from maintenance.checks.external import cross_check, from_pingdom, from_uptimerobot
from maintenance.config import MaintenanceConfig
from maintenance.hooks.monitors import PingdomHook, UptimeRobotHook
from maintenance.operators.uptime import payment_provider_checks
from servers import LocalServer, json_reply

KEY = "ur-readonly-KEY-12345"


def uptimerobot(request):
    if request.headers.get("Authorization") != f"Bearer {KEY}":
        return json_reply({"error": True, "message": "Invalid API key"}, 401)
    if "cursor=2" in request.path:
        return json_reply({"data": [
            {"id": 3, "friendlyName": "Admin", "url": "https://example.org/admin/login", "type": "HTTP",
             "status": "PAUSED", "interval": 300}], "nextLink": None})
    return json_reply({"data": [
        {"id": 1, "friendlyName": "Homepage", "url": "https://example.org/", "type": "HTTP", "status": "UP"},
        {"id": 2, "friendlyName": "API", "url": "https://example.org/api/health", "type": "HTTP", "status": "DOWN",
         "lastIncident": {"id": 9, "status": "ongoing", "cause": 503, "reason": "Service Unavailable"}},
    ], "nextLink": "/v3/monitors?limit=200&cursor=2"})


def pingdom(request):
    assert request.headers.get("Authorization") == "Bearer pd-token-123"
    return json_reply({"checks": [
        {"id": 11, "name": "example.org", "type": "http", "hostname": "example.org", "status": "up",
         "resolution": 1, "lastresponsetime": 212, "lasttesttime": 1764300000},
    ], "counts": {"total": 1, "limited": 1, "filtered": 1}})


@pytest.fixture
def own():
    return {"https://example.org/": ("homepage", "fail"), "https://example.org/api/health": ("api-health", "ok")}


def test_uptimerobot_v3_pages_and_cross_check(monkeypatch, own):
    with LocalServer(uptimerobot) as server:
        monkeypatch.setenv("AIRFLOW_CONN_UPTIMEROBOT_API", json.dumps(
            {"conn_type": "http", "host": server.url, "password": KEY}))
        monitors = [from_uptimerobot(m) for m in UptimeRobotHook().monitors()]
    assert [m.name for m in monitors] == ["Homepage", "API", "Admin"]
    results = {r.check: r for r in cross_check(monitors, own)}
    home, api, admin = (results[f"external.uptimerobot.{n}"] for n in ("Homepage", "API", "Admin"))
    assert (home.status, home.reason) == ("warn", "disagreement") and "our check homepage is fail" in home.summary
    assert (api.status, api.reason) == ("fail", "external_down") and "disagrees" in api.summary
    assert (admin.status, admin.reason) == ("warn", "paused")


def test_uptimerobot_bad_key_is_unauthorized_naming_the_connection(monkeypatch):
    from maintenance.hooks.http_policy import ProviderError

    with LocalServer(uptimerobot) as server:
        monkeypatch.setenv("AIRFLOW_CONN_UPTIMEROBOT_API", json.dumps(
            {"conn_type": "http", "host": server.url, "password": "wrong-key-999"}))
        with pytest.raises(ProviderError) as caught:
            UptimeRobotHook().monitors()
    assert caught.value.reason == "unauthorized" and "uptimerobot_api" in str(caught.value)
    assert len(server.requests) == 1 and "wrong-key-999" not in str(caught.value)


def test_pingdom_checks_match_by_host(monkeypatch, own):
    with LocalServer(pingdom) as server:
        monkeypatch.setenv("AIRFLOW_CONN_PINGDOM_API", json.dumps(
            {"conn_type": "http", "host": server.url, "password": "pd-token-123"}))
        monitors = [from_pingdom(c) for c in PingdomHook().checks()]
    [result] = cross_check(monitors, own)
    assert result.check == "external.pingdom.example.org" and result.status == "warn"   # up there, homepage fails here


def stripe_and_daraja(request):
    if request.path == "/v1/balance":
        if request.headers.get("Authorization") != "Bearer sk_test_good":
            return json_reply({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}, 401)
        return json_reply({"object": "balance", "livemode": False,
                           "available": [{"amount": 1000, "currency": "kes", "source_types": {"card": 1000}}],
                           "pending": []})
    if request.path.startswith("/oauth/v1/generate?grant_type=client_credentials"):
        expected = "Basic " + base64.b64encode(b"consumer-key:consumer-secret").decode()
        if request.headers.get("Authorization") != expected:
            return json_reply({"requestId": "1", "errorCode": "400.008.01", "errorMessage": "Invalid Authentication passed"}, 400)
        return json_reply({"access_token": "tok", "expires_in": "3599"})
    return json_reply({}, 404)


def payments_config():
    return MaintenanceConfig.model_validate({"site": {"name": "t", "url": "https://t"}, "stripe": {}, "mpesa": {}})


@pytest.fixture
def payment_apis(monkeypatch):
    """Point stripe_default and mpesa_daraja at the local server, with the given secrets."""
    with LocalServer(stripe_and_daraja) as server:
        def connect(stripe_key: str, daraja_secret: str) -> None:
            monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", json.dumps(
                {"conn_type": "http", "host": server.url, "password": stripe_key}))
            monkeypatch.setenv("AIRFLOW_CONN_MPESA_DARAJA", json.dumps(
                {"conn_type": "http", "host": server.url, "login": "consumer-key", "password": daraja_secret}))
        yield connect


def test_payment_providers_reachable(payment_apis):
    payment_apis("sk_test_good", "consumer-secret")
    stripe, daraja = payment_provider_checks(payments_config())
    assert (stripe.check, stripe.status, stripe.group) == ("payments.stripe_api", "ok", "payments")
    assert (daraja.check, daraja.status) == ("payments.daraja_oauth", "ok") and "3599" in daraja.summary


def test_payment_provider_failures_are_classified(payment_apis):
    payment_apis("sk_test_bad_key", "nope")
    stripe, daraja = payment_provider_checks(payments_config())
    assert (stripe.status, stripe.reason) == ("fail", "unauthorized") and "stripe_default" in stripe.summary
    assert "sk_test_bad_key" not in stripe.summary
    assert (daraja.status, daraja.reason) == ("fail", "http_4xx") and "Invalid Authentication" in daraja.summary


def test_unconfigured_payment_providers_are_skipped_with_how_to(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STRIPE_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MPESA_DARAJA", raising=False)
    results = payment_provider_checks(payments_config())
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert "stripe_default" in results[0].summary and "mpesa_daraja" in results[1].summary
