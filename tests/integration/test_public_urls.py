"""hooks/public.py's get/call/probe (status pages, echo URLs, the runbooks' callback and upload
probes) against local servers: what comes back, the retry policy per call, the optional Bearer
connection and its redaction."""

from __future__ import annotations

import json

import pytest

from maintenance.hooks import public
from maintenance.hooks.http_policy import ProviderError, RetryPolicy
from servers import LocalServer, free_port, json_reply

QUICK = RetryPolicy(timeout=2, attempts=2, backoff_base=0.01, backoff_max=0.02)


def test_get_parses_json_and_names_itself():
    with LocalServer(lambda r: json_reply({"status": {"indicator": "none"}})) as server:
        assert public.get(f"{server.url}/api/v2/status.json") == {"status": {"indicator": "none"}}
    assert server.requests[0].headers["User-Agent"] == public.USER_AGENT
    assert "Authorization" not in server.requests[0].headers


def test_get_of_a_page_that_is_not_json_is_malformed():
    with LocalServer(lambda r: (200, {"Content-Type": "text/html"}, "<html>maintenance</html>")) as server:
        with pytest.raises(ProviderError) as caught:
            public.get(server.url, policy=QUICK)
        assert public.get(server.url, expect_json=False).text == "<html>maintenance</html>"
    assert caught.value.reason == "malformed_response" and len(server.requests) == 2


@pytest.mark.parametrize("status, reason, tries", [(200, None, 1), (404, "http_4xx", 1), (503, "http_5xx", 2)])
def test_probe_reports_every_answer(status, reason, tries):
    with LocalServer(lambda r: json_reply({"message": "nope"}, status)) as server:
        answer = public.probe("POST", f"{server.url}/cb", json={}, policy=QUICK)
    assert (answer.status, answer.reason) == (status, reason)
    assert len(server.requests) == tries and server.requests[0].json() == {}


def test_probe_without_an_answer_is_classified():
    answer = public.probe("POST", f"http://127.0.0.1:{free_port()}/cb", policy=QUICK)
    assert answer.status is None and answer.reason == "refused" and "connection refused" in answer.error


def test_probe_of_one_attempt_is_sent_once():
    with LocalServer(lambda r: json_reply({}, 502)) as server:
        answer = public.probe("POST", server.url, data=b"x", policy=RetryPolicy(timeout=2, attempts=1))
    assert answer.status == 502 and len(server.requests) == 1


def test_bearer_connection_is_sent_and_redacted(monkeypatch):
    token = "upload-TOKEN-4711"
    monkeypatch.setenv("AIRFLOW_CONN_UPLOAD_PROBE", json.dumps({"conn_type": "http", "password": token}))
    echo = LocalServer(lambda r: json_reply({"message": f"refused {r.headers.get('Authorization')}"}, 401))
    with echo:
        answer = public.probe("POST", echo.url, bearer_conn_id="upload_probe", policy=QUICK)
        anonymous = public.probe("POST", echo.url, bearer_conn_id="no_such_connection", policy=QUICK)
    assert echo.requests[0].headers["Authorization"] == f"Bearer {token}"
    assert "Authorization" not in echo.requests[1].headers
    assert answer.status == 401 and answer.reason == "unauthorized" and len(echo.requests) == 2   # 401: no retry
    assert token not in answer.error and "refused Bearer ***" in answer.error and "'upload_probe'" in answer.error
    assert anonymous.status == 401 and "refused None" in anonymous.error
