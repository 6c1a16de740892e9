"""dag.test() of uptime_monitor against a site mixing hostile answers (tests/hostile_site.py)
with healthy endpoints (issue 8, "Done when"): exactly the bad ones fail, each with its
reason; no crash; no secret in the Slack payloads, the results store or the task logs.

On 42952f2 (before 0bd2e95) the unknown charset and the deep JSON crashed the whole sweep:
the run ended in one "TASK CRASHED" message and no endpoint was checked.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap

from hostile_site import (
    BEARER, BEARER_HEADER, CONTROL, ECHOED_SHAPES, HEADER_KEY, LEAK_MARKERS, SECRET_FORMS, HostileApp, RawServer,
    huge_answer, login_site, redirect_to, secret_url,
)
from servers import LocalServer, SlackReceiver

from .test_uptime_monitor_run import uptime_dag

ADMIN_PASSWORD = "pw-Adm1n-s3cret"
GOOD = ["home", "api-health", "odd-charset", "paused-page", "redirected"]
BAD = {"deep-json": "body", "echo": "http_5xx", "admin-login": "login_failed",
       # issue 18, item 9: every secret shape as PHP's json_encode and .NET's %2f write it
       "echo-php-json": "http_5xx", "echo-percent-lower": "http_5xx"}
ENCODED_CONDITIONS = ", ".join(f'"[BODY].{name} == ok"' for name in ECHOED_SHAPES)


def write_config(tmp_path, site: str, raw: str, origin: str) -> str:
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: hostile.example, url: "{site}"}}
        endpoints:
          - {{name: home, url: "{site}/healthy", group: homepage, critical: true,
              conditions: ["[STATUS] == 200", "[BODY] == pat(*Welcome*)"]}}
          - {{name: api-health, url: "{site}/api/health", group: api, critical: true,
              conditions: ["[STATUS] == 200", "[BODY].status == ok"]}}
          - {{name: odd-charset, url: "{site}/charset", critical: true,
              conditions: ["[STATUS] == 200", "[BODY] == pat(*Welcome to the café*)"]}}
          - {{name: paused-page, url: "{raw}/paused", critical: true,
              conditions: ["[STATUS] == 200", "[BODY] == pat(*Welcome*)"]}}
          - {{name: redirected, url: "{origin}/start", critical: true,
              headers: {{X-Api-Key: "{HEADER_KEY}", Authorization: "Bearer {BEARER}"}},
              conditions: ["[STATUS] == 200"]}}
          - {{name: deep-json, url: "{site}/deep", group: api, critical: true,
              conditions: ["[STATUS] == 200", "[BODY].x == 1"]}}
          - name: echo
            url: "{secret_url(site)}"
            critical: true
            headers: {{X-Api-Key: "{HEADER_KEY}"}}
            conditions: ["[STATUS] == 200", "[BODY].url == ok", "[BODY].auth == ok", "[BODY].pw == ok",
                         "[BODY].raw == ok", "[BODY].key == ok", "[BODY].header == ok", "[BODY].long == ok",
                         "[BODY].note == ok"]
          - {{name: echo-php-json, url: "{secret_url(site, '/echo-encoded/php-json')}", critical: true,
              headers: {{X-Api-Key: "{HEADER_KEY}", X-Upstream-Auth: "{BEARER_HEADER}"}},
              conditions: ["[STATUS] == 200", "[BODY] == pat(*Welcome*)", {ENCODED_CONDITIONS}]}}
          - {{name: echo-percent-lower, url: "{secret_url(site, '/echo-encoded/percent-lower')}", critical: true,
              headers: {{X-Api-Key: "{HEADER_KEY}", X-Upstream-Auth: "{BEARER_HEADER}"}},
              conditions: ["[STATUS] == 200", "[BODY] == pat(*Welcome*)", {ENCODED_CONDITIONS}]}}
          - name: admin-login
            url: "{raw}/login"
            group: admin
            critical: true
            timeout: 5s
            conditions: ["[STATUS] == 200", "[BODY] == pat(*password*)"]
            login: {{conn_id: admin_login, expect_status: [200], expect_body: "*Welcome back*"}}
        alerting: {{failure_threshold: 1, success_threshold: 1, renotify_after: 4h}}
        tasks: {{retries: 2, retry_delay: 0s}}
        heartbeat: {{late_after: {{}}}}
        results: {{conn_id: test_results}}
    """))
    return str(path)


def test_hostile_site_names_exactly_the_bad_endpoints_and_leaks_nothing(airflow_db, tmp_path, monkeypatch, capfd,
                                                                       caplog):
    from airflow.sdk import DagRunState

    from maintenance.results import ResultsStore

    store_path = tmp_path / "results.db"
    with LocalServer(HostileApp()) as site, RawServer(login_site(huge_answer)) as raw, \
            LocalServer(lambda r: (200, {"Content-Type": "text/plain"}, "landed")) as other, \
            LocalServer(redirect_to(other.url + "/landing")) as origin, SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", write_config(tmp_path, site.url, raw.url, origin.url))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_ADMIN_LOGIN", json.dumps(
            {"conn_type": "http", "login": "admin", "password": ADMIN_PASSWORD}))
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{store_path}"}}))
        run = uptime_dag().test()
        messages = list(slack.messages)

    out, err = capfd.readouterr()
    logs = "\n".join((out, err, caplog.text))
    assert run.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["check_endpoints"] == "failed"

    # Every endpoint was checked on every try; exactly the bad ones failed, with their reasons.
    history = ResultsStore(f"sqlite:///{store_path}").history(run_id=run.run_id)
    outcome: dict[str, set] = {}
    for row in history:
        outcome.setdefault(row["check_name"], set()).add((row["status"], row["reason"]))
    for name in GOOD:
        assert outcome[name] == {("ok", None)}, (name, outcome[name])
    for name, reason in BAD.items():
        assert outcome[name] == {("fail", reason)}, (name, outcome[name])

    # One grouped message naming exactly the bad ones; no crash.
    [message] = [m for m in messages if "check_endpoints" in json.dumps(m["blocks"])]
    text = message["text"]
    assert "TASK CRASHED" not in json.dumps(messages) and "internal_error" not in json.dumps(messages)
    lines = text.splitlines()
    assert lines[0] == "hostile.example: 5 failing", text
    failing = {line.split(":")[0].removeprefix("FAILING "): line for line in lines[1:] if line.startswith("FAILING")}
    assert set(failing) == set(BAD), text
    for name, reason in BAD.items():
        assert f"reason: {reason}" in failing[name], failing[name]
    assert "[BODY].x (missing) == 1" in failing["deep-json"]
    assert "body does not match *Welcome back*" in failing["admin-login"]
    assert "&lt;!channel&gt;" in failing["echo"]
    payloads = json.dumps(messages)
    assert "<!channel>" not in payloads and "<https://evil" not in payloads

    # The redirect's other origin never saw the configured credentials.
    assert other.requests and all("X-Api-Key" not in r.headers and "Authorization" not in r.headers
                                  for r in other.requests)

    # No secret anywhere: Slack, the results store (every row of every table), the task logs.
    with sqlite3.connect(store_path) as db:
        stored = "\n".join(db.iterdump())
    assert CONTROL in stored                                      # what the site said is kept, redacted
    assert "FAIL  deep-json" in logs and "OK    paused-page" in logs, "the task log lines were not captured"
    for where, content in (("slack", payloads), ("results store", stored), ("task logs", logs)):
        leaked = [form for form in (*SECRET_FORMS, *LEAK_MARKERS, ADMIN_PASSWORD, "XXXXSECRETXXXX") if form in content]
        assert not leaked, f"{where} shows {leaked}"
