"""The uptime sweep against local HTTP and HTTPS servers (certificates made by the test)."""

from __future__ import annotations

import gc
import re
import ssl
import time
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
import trustme

from maintenance.checks.uptime import sweep
from maintenance.config import Endpoint
from servers import UNRESOLVABLE_HOST, LocalServer, free_port, json_reply


def endpoint(url, *conditions, **options) -> Endpoint:
    return Endpoint(name=options.pop("name", "ep"), url=url, conditions=list(conditions or ["[STATUS] == 200"]),
                    **options)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def https_server(ca, app, days_left=None):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    not_after = datetime.now(timezone.utc) + timedelta(days=days_left) if days_left else None
    ca.issue_cert("127.0.0.1", not_after=not_after).configure_cert(context)
    return LocalServer(app, ssl_context=context)


def site(request):
    if request.path == "/api/health":
        return json_reply({"status": "ok", "db": {"latency_ms": 12}, "checks": [1, 2, 3]})
    if request.path == "/slow":
        time.sleep(1.5)
    if request.path == "/redirect":
        return 302, {"Location": "/"}, ""
    return 200, {"Content-Type": "text/html"}, "<h1>Welcome to example.org</h1>"


def test_every_placeholder_and_function_passes_on_a_healthy_https_site(ca, ca_file):
    with https_server(ca, site, days_left=90) as server:
        [result] = sweep([endpoint(
            server.url + "/api/health",
            "[STATUS] == 200", "[STATUS] == any(200, 204)", "[RESPONSE_TIME] < 3000",
            "[BODY].status == ok", "[BODY].db.latency_ms < 100", "len([BODY].checks) == 3",
            "has([BODY].errors) == false", "[BODY] == pat(*status*)",
            "[CERTIFICATE_EXPIRATION] > 30d", "[CONNECTED] == true", "[IP] == 127.0.0.1",
        )], ca_file=ca_file)
    assert result.status == "ok", result.summary
    assert result.metrics["status_code"] == 200 and 89 < result.metrics["tls_days_left"] <= 90


def test_certificate_expiring_in_five_days(ca, ca_file):
    with https_server(ca, site, days_left=5) as server:
        [result] = sweep([endpoint(server.url + "/", "[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 14d")],
                         ca_file=ca_file)
    assert result.status == "fail" and result.reason == "certificate"
    assert re.fullmatch(r"\[CERTIFICATE_EXPIRATION\] \((4d 23h|5d)\) > 14d", result.summary), result.summary
    assert 4.9 < result.metrics["tls_days_left"] <= 5.01


def test_untrusted_certificate_is_a_tls_failure_unless_insecure(ca):
    with https_server(ca, site) as server:
        [strict] = sweep([endpoint(server.url + "/")])
        [insecure] = sweep([endpoint(server.url + "/", "[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 1d",
                                     insecure=True)])
    assert strict.status == "fail" and strict.reason == "tls" and "certificate" in strict.summary.lower()
    assert insecure.status == "ok", insecure.summary     # explicit opt-out; expiry still read


@pytest.mark.parametrize("app,conditions,reason,words", [
    (lambda r: (500, {}, "boom"), ["[STATUS] == 200"], "http_5xx", "[STATUS] (500) == 200"),
    (lambda r: (404, {}, "nope"), ["[STATUS] == 200"], "http_4xx", "[STATUS] (404) == 200"),
    (lambda r: json_reply({"status": "degraded"}), ["[STATUS] == 200", "[BODY].status == ok"], "body",
     "[BODY].status (degraded) == ok"),
    (lambda r: (200, {}, "<h1>Maintenance</h1>"), ["[BODY] == pat(*Welcome*)"], "body", "pat(*Welcome*)"),
    (lambda r: (200, {}, "not json"), ["[BODY].status == ok"], "body", "[BODY].status (missing) == ok"),
])
def test_failure_classes_from_the_answer(app, conditions, reason, words):
    with LocalServer(app) as server:
        [result] = sweep([endpoint(server.url + "/", *conditions)])
    assert (result.status, result.reason) == ("fail", reason), result.summary
    assert words in result.summary


def test_slow_answer_past_the_timeout():
    with LocalServer(site) as server:
        [result] = sweep([endpoint(server.url + "/slow", timeout="300ms")])
    assert (result.status, result.reason) == ("fail", "timeout") and "0.3s" in result.summary


def test_slow_answer_against_response_time_condition():
    with LocalServer(site) as server:
        [result] = sweep([endpoint(server.url + "/slow", "[RESPONSE_TIME] < 500")])
    assert (result.status, result.reason) == ("fail", "slow") and "[RESPONSE_TIME] (" in result.summary
    assert result.metrics["response_ms"] >= 500        # an answer did come: the condition, not a timeout, failed it


def test_refused_port_and_unresolvable_host():
    results = sweep([endpoint(f"http://127.0.0.1:{free_port()}/", name="refused"),
                     endpoint(f"http://{UNRESOLVABLE_HOST}/", name="dns", timeout="3s")])
    assert [(r.check, r.reason) for r in results] == [("refused", "refused"), ("dns", "dns")]
    assert all(r.status == "fail" for r in results)


def test_redirects_followed_or_not():
    with LocalServer(site) as server:
        followed, kept = sweep([
            endpoint(server.url + "/redirect", "[STATUS] == 200", "[BODY] == pat(*Welcome*)", name="a"),
            endpoint(server.url + "/redirect", "[STATUS] == 302", name="b", follow_redirects=False),
        ])
    assert followed.status == "ok" and kept.status == "ok", (followed.summary, kept.summary)


def test_method_headers_and_body_are_sent():
    def echo(request):
        ok = request.method == "POST" and request.headers.get("X-Probe") == "yes" and request.body == b"ping"
        return (200 if ok else 400), {}, "ok"
    with LocalServer(echo) as server:
        [result] = sweep([endpoint(server.url + "/", method="POST", headers={"X-Probe": "yes"}, body="ping")])
    assert result.status == "ok", result.summary


def test_many_endpoints_one_result_each_in_order():
    with LocalServer(site) as good, LocalServer(lambda r: (503, {}, "")) as bad:
        endpoints = [endpoint((good if i % 3 else bad).url + "/", name=f"e{i}") for i in range(30)]
        results = sweep(endpoints, concurrency=5)
    assert [r.check for r in results] == [f"e{i}" for i in range(30)]
    assert [r.status for r in results] == ["fail" if i % 3 == 0 else "ok" for i in range(30)]


def test_collector_setting_raised_during_the_sweep_and_restored_after():
    seen = []

    def record(request):
        seen.append(gc.get_threshold()[0])
        return 200, {}, "ok"

    before = gc.get_threshold()
    try:
        with LocalServer(record) as server:
            sweep([endpoint(server.url + "/", name=f"e{i}") for i in range(3)], concurrency=2)
            assert seen and set(seen) == {10_000}   # the server runs in this process: it sees the setting
            assert gc.get_threshold() == before
            gc.set_threshold(50_000, *before[1:])   # a larger setting made by the application is left alone
            sweep([endpoint(server.url + "/")])
            assert seen[-1] == 50_000 and gc.get_threshold()[0] == 50_000
            gc.set_threshold(*before)
            with pytest.raises(FileNotFoundError):  # a sweep that fails restores the setting too
                sweep([endpoint(server.url + "/")], ca_file=str(Path(__file__).parent / "no-such-ca.pem"))
            assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)


# -- the admin login flow --------------------------------------------------------------------------
class AdminApp:
    """A login form with a CSRF cookie; a correct POST sets `sessionid` and redirects to /admin."""

    def __init__(self, set_session_cookie=True):
        self.set_session_cookie = set_session_cookie

    def __call__(self, request):
        if request.method == "GET":
            return 200, {"Set-Cookie": "csrftoken=abc; Path=/"}, "<form>username password</form>"
        form = dict(p.split("=", 1) for p in request.body.decode().split("&"))
        if "csrftoken=abc" not in request.headers.get("Cookie", ""):
            return 403, {}, "csrf"
        if form.get("username") == "admin" and form.get("password") == "s3cr3t-pass":
            headers = {"Location": "/admin/"}
            if self.set_session_cookie:
                headers["Set-Cookie"] = "sessionid=xyz; Path=/; HttpOnly"
            return 302, headers, ""
        return 200, {}, "<p>Please enter a correct username and password</p>"


def login_endpoint(url):
    return endpoint(url + "/admin/login/", "[STATUS] == 200", "[BODY] == pat(*password*)", name="admin-login",
                    group="admin", login={"expect_status": [302], "expect_redirect": "/admin/*",
                                          "expect_cookie": "sessionid"})


def test_login_flow_succeeds():
    with LocalServer(AdminApp()) as server:
        [result] = sweep([login_endpoint(server.url)], credentials={"admin-login": ("admin", "s3cr3t-pass")})
    assert result.status == "ok" and "login ok" in result.summary


def test_login_with_wrong_credentials_fails_without_leaking_them():
    with LocalServer(AdminApp()) as server:
        [result] = sweep([login_endpoint(server.url)], credentials={"admin-login": ("admin", "wrong-password")})
    assert (result.status, result.reason) == ("fail", "login_failed")
    assert "HTTP 200 (expected 302)" in result.summary and "no session cookie 'sessionid'" in result.summary
    assert "wrong-password" not in str(result.to_dict())


def test_login_without_session_cookie_fails():
    with LocalServer(AdminApp(set_session_cookie=False)) as server:
        [result] = sweep([login_endpoint(server.url)], credentials={"admin-login": ("admin", "s3cr3t-pass")})
    assert result.reason == "login_failed" and result.summary == "login: no session cookie 'sessionid' set"


def test_login_without_credentials_says_which_connection():
    with LocalServer(AdminApp()) as server:
        [result] = sweep([login_endpoint(server.url)])
    assert result.status == "fail" and "admin_login" in result.summary
