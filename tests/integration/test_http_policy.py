"""The one HTTP policy against local servers: each failure class, retries, Retry-After, secrets."""

from __future__ import annotations

import json
import time

import pytest
import requests

from maintenance.hooks.http_policy import ProviderError, RetryPolicy, send
from servers import UNRESOLVABLE_HOST, LocalServer, free_port, json_reply

FAST = RetryPolicy(timeout=0.5, attempts=3, backoff_base=0.01, backoff_max=0.05, retry_after_max=5)


class Sequence:
    """Answers from a list, the last one repeating."""

    def __init__(self, *replies):
        self.replies = list(replies)

    def __call__(self, request):
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if callable(reply):
            return reply(request)
        return reply


def call(url, policy=FAST, **kwargs):
    sleeps: list[float] = []
    try:
        return send(requests.Session(), "GET", url, policy=policy, sleep=sleeps.append, **kwargs), sleeps
    except ProviderError as exc:
        exc.sleeps = sleeps
        raise


def test_slow_answer_is_a_timeout_and_retried():
    def slow(request):
        time.sleep(1.0)
        return json_reply({})
    with LocalServer(slow) as server:
        with pytest.raises(ProviderError) as caught:
            call(server.url + "/slow", policy=RetryPolicy(timeout=0.2, attempts=2, backoff_base=0.01))
    assert caught.value.reason == "timeout" and caught.value.attempts == 2
    assert len(server.requests) == 2


def test_refused_port():
    with pytest.raises(ProviderError) as caught:
        call(f"http://127.0.0.1:{free_port()}/")
    assert caught.value.reason == "refused" and caught.value.attempts == 3


def test_unresolvable_host():
    with pytest.raises(ProviderError) as caught:
        call(f"http://{UNRESOLVABLE_HOST}/", policy=RetryPolicy(timeout=2, attempts=1))
    assert caught.value.reason == "dns"


def test_500_then_200_is_retried_to_success():
    app = Sequence(json_reply({"error": "boom"}, 500), json_reply({"ok": True}))
    with LocalServer(app) as server:
        body, sleeps = call(server.url + "/x", expect_json=True)
    assert body == {"ok": True} and len(server.requests) == 2 and len(sleeps) == 1


def test_500_every_time_is_http_5xx_after_all_attempts():
    with LocalServer(lambda r: json_reply({"message": "database down"}, 503)) as server:
        with pytest.raises(ProviderError) as caught:
            call(server.url + "/x")
    assert caught.value.reason == "http_5xx" and caught.value.status == 503
    assert "database down" in str(caught.value) and len(server.requests) == 3


def test_429_honours_retry_after():
    app = Sequence(json_reply({}, 429, {"Retry-After": "2"}), json_reply({"ok": 1}))
    with LocalServer(app) as server:
        body, sleeps = call(server.url + "/x", expect_json=True)
    assert body == {"ok": 1} and sleeps == [2.0]


def test_retry_after_is_bounded():
    app = Sequence(json_reply({}, 429, {"Retry-After": "3600"}), json_reply({}, 429, {"Retry-After": "3600"}))
    with LocalServer(app) as server:
        with pytest.raises(ProviderError) as caught:
            call(server.url + "/x")
    assert caught.value.reason == "rate_limited"
    assert caught.value.sleeps == [5.0, 5.0]


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0), ("1.5", 1.5), ("31536000", 86400.0), ("99999999999999", 86400.0),
    ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0), ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
    ("Sun, 06 Dec 2026 03:02:00 -0000", 60.0),
    ("inf", None), ("1e400", None), ("nan", None), ("-5", None), ("soon", None), ("", None), (None, None),
])
def test_retry_after_is_read_into_a_bounded_value(value, seconds):
    """Issue 18, item 1: delta-seconds or an HTTP date, never more than a day; what cannot be
    waited (inf, NaN, negative, not a date) is None, so the caller backs off by its default."""
    from email.utils import parsedate_to_datetime

    from maintenance.hooks.http_policy import parse_retry_after

    now = parsedate_to_datetime("Sun, 06 Dec 2026 03:01:00 GMT").timestamp()
    assert parse_retry_after(value, now=now) == seconds


def test_malformed_json():
    with LocalServer(lambda r: (200, {"Content-Type": "application/json"}, "{not json")) as server:
        with pytest.raises(ProviderError) as caught:
            call(server.url + "/x", expect_json=True)
    assert caught.value.reason == "malformed_response" and len(server.requests) == 1


def test_401_is_not_retried_and_names_the_connection():
    with LocalServer(lambda r: json_reply({"error": "invalid api key"}, 401)) as server:
        with pytest.raises(ProviderError) as caught:
            call(server.url + "/x", conn_id="sentry_api")
    assert caught.value.reason == "unauthorized" and len(server.requests) == 1
    assert "sentry_api" in str(caught.value)


def test_tls_error_against_an_untrusted_certificate(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with LocalServer(lambda r: json_reply({}), ssl_context=context) as server:
        with pytest.raises(ProviderError) as caught:
            call(server.url + "/x")
    assert caught.value.reason == "tls" and "certificate" in str(caught.value).lower()


def test_secrets_never_appear_in_errors():
    secret = "sk_test_SUPERSECRET123"
    with LocalServer(lambda r: json_reply({"message": f"bad key {secret}"}, 401)) as server:
        with pytest.raises(ProviderError) as caught:
            call(f"{server.url}/x?api_key={secret}", secrets=[secret])
    assert secret not in str(caught.value)
    refused_url = f"http://user:{secret}@127.0.0.1:{free_port()}/x?token={secret}"
    with pytest.raises(ProviderError) as caught:
        call(refused_url)
    assert secret not in str(caught.value)
    assert caught.value.reason == "refused"
