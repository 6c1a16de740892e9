"""Slack that misbehaves: 404 no_service, 429 Retry-After, 200 without "ok", accept-then-hang,
a webhook dead for a day. Delivery through the real SlackWebhookHook against local receivers
(issue #8, section 3): nothing lost, nothing doubled, no storm."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from maintenance.alerting import assess, deliver
from maintenance.config import MaintenanceConfig
from maintenance.operators.alerts import dead_letter_check
from maintenance.results import CheckResult, ResultsStore
from servers import LocalServer, Request

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
TOKEN = "T000/B000/HOSTILESECRETTOKEN"


CLOSE = None   # an answer that takes the message and closes the connection without a word


class Receiver:
    """A webhook that answers from a script: (status, body, headers) or CLOSE per request,
    then `then` (by default 'ok') to every later one."""

    def __init__(self, *answers: tuple[int, str, dict[str, str]] | None, hang: float = 0.0,
                 then: tuple[int, str, dict[str, str]] | None = (200, "ok", {})) -> None:
        self.answers = list(answers)
        self.hang = hang
        self.then = then
        self.received: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request):
        with self.lock:
            self.received.append(request.json())
            answer = self.answers.pop(0) if self.answers else self.then
        if self.hang:
            time.sleep(self.hang)   # accepted, then no answer in time
        if answer is CLOSE:
            raise ConnectionAbortedError   # LocalServer closes the connection, no status line
        status, body, headers = answer
        return status, {"Content-Type": "text/plain", **headers}, body


def make_config(**alerting) -> MaintenanceConfig:
    return MaintenanceConfig.model_validate({
        "site": {"name": "t", "url": "https://t.example"},
        "alerting": {"failure_threshold": 1, "slack_timeout": "1s", **alerting},
    })


@pytest.fixture
def store(results_url):
    store = ResultsStore(results_url)
    failing = CheckResult(check="home", status="fail", summary="home is down", reason="http_5xx", time=T0)
    assess(store, make_config(), [failing], dag_id="uptime_monitor", run_id="r1", task_id="check_endpoints", now=T0)
    return store


def serve(monkeypatch, receiver: Receiver) -> LocalServer:
    server = LocalServer(receiver).__enter__()
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
        {"conn_type": "slackwebhook", "password": f"{server.url}/services/{TOKEN}"}))
    return server


@pytest.mark.parametrize("status, body", [(404, "no_service"), (410, "channel_is_archived"),
                                          (403, "invalid_token"), (403, "action_prohibited"), (400, "invalid_payload")])
def test_a_permanent_refusal_is_one_request_per_delivery_not_a_loop(store, monkeypatch, status, body):
    receiver = Receiver(*[(status, body, {})] * 5)
    server = serve(monkeypatch, receiver)
    try:
        waits: list[float] = []
        assert deliver(store, make_config(), now=T0, sleep=waits.append) == 0
        assert len(receiver.received) == 1 and waits == []          # not retried in a loop
        row = store.outbox()[0]
        assert row["delivered_at"] is None and body in row["last_error"] and "permanent" in row["last_error"]
        assert TOKEN not in row["last_error"]
        assert deliver(store, make_config(), now=T0 + timedelta(minutes=5), sleep=waits.append) == 0
        assert len(receiver.received) == 2                           # the next delivery: one more try, kept
    finally:
        server.__exit__(None, None, None)


def test_a_200_that_is_not_ok_is_not_delivered(store, monkeypatch):
    receiver = Receiver((200, "invalid_blocks", {}))
    server = serve(monkeypatch, receiver)
    try:
        assert deliver(store, make_config(), now=T0, sleep=lambda s: None) == 0
        assert store.outbox()[0]["delivered_at"] is None and "invalid_blocks" in store.outbox()[0]["last_error"]
        assert deliver(store, make_config(), now=T0 + timedelta(minutes=1)) == 1     # kept, then sent
        assert len(receiver.received) == 2
    finally:
        server.__exit__(None, None, None)


def test_retry_after_is_honoured_in_this_delivery_and_the_next(store, monkeypatch):
    # A short Retry-After: waited out inside the delivery, never less than asked.
    receiver = Receiver((429, "rate_limited", {"Retry-After": "3"}))
    server = serve(monkeypatch, receiver)
    try:
        waits: list[float] = []
        assert deliver(store, make_config(), now=T0, sleep=waits.append) == 1
        assert waits == [3.0] and len(receiver.received) == 2
        # A long one ends the delivery and closes the gate for every sender until it expires.
        assess(store, make_config(), [CheckResult("api", "fail", "api down", time=T0)],
               dag_id="uptime_monitor", run_id="r2", task_id="check_endpoints", now=T0)
        receiver.answers = [(429, "rate_limited", {"Retry-After": "120"})]
        assert deliver(store, make_config(), now=T0, sleep=waits.append) == 0
        assert len(receiver.received) == 3 and waits == [3.0]
        for seconds in (1, 60, 119):
            assert deliver(store, make_config(), now=T0 + timedelta(seconds=seconds)) == 0
        assert len(receiver.received) == 3                              # no request before it expires
        assert deliver(store, make_config(), now=T0 + timedelta(seconds=121)) == 1
        assert len(receiver.received) == 4
    finally:
        server.__exit__(None, None, None)


def test_a_receiver_that_accepts_then_hangs_gets_at_most_two_copies(store, monkeypatch):
    receiver = Receiver(hang=2.0)   # slack_timeout is 1 s
    server = serve(monkeypatch, receiver)
    try:
        for minute in range(0, 30, 5):
            deliver(store, make_config(), now=T0 + timedelta(minutes=minute), sleep=lambda s: None)
        assert len(receiver.received) == 2
        [row] = store.outbox()
        assert row["uncertain"] == 2 and row["dead_at"] is not None and row["delivered_at"] is None
    finally:
        server.__exit__(None, None, None)


def test_an_undeliverable_message_is_dead_lettered_after_its_life_and_reported(store, monkeypatch):
    receiver = Receiver(*[(404, "no_service", {})] * 50)
    server = serve(monkeypatch, receiver)
    config = make_config(outbox_max_age="24h")
    try:
        for hour in range(0, 25, 4):
            deliver(store, config, now=T0 + timedelta(hours=hour), sleep=lambda s: None)
        sent = len(receiver.received)
        assert sent == 7                                    # one try per delivery for 24 h
        deliver(store, config, now=T0 + timedelta(hours=25), sleep=lambda s: None)
        assert len(receiver.received) == sent                # then given up: no more requests
    finally:
        server.__exit__(None, None, None)
    [row] = store.outbox()
    assert row["dead_at"] is not None and "no_service" in row["last_error"]
    review = dead_letter_check(store.dead_letters(), "maintenance_daily")
    assert review.status == "fail" and review.metrics["dead_letters"] == 1
    assert "no_service" in review.summary and TOKEN not in review.summary


def test_the_webhook_url_is_masked_before_any_request(store, monkeypatch, caplog):
    """slack_sdk's logger sees the URL; neither its records nor Airflow's masker let it out."""
    from airflow.sdk._shared.secrets_masker import redact as airflow_redact

    from servers import free_port

    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
        {"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{free_port()}/services/{TOKEN}"}))
    logging.getLogger("maintenance.slack_sdk").setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        assert deliver(store, make_config(), now=T0, sleep=lambda s: None) == 0
    assert "HOSTILESECRETTOKEN" not in caplog.text
    assert "HOSTILESECRETTOKEN" not in airflow_redact(f"posting to http://x/services/{TOKEN}")


# -- issue 18: a proxy, load balancer or egress gateway in front of the webhook --------------------
def review(store) -> "CheckResult":
    """maintenance_daily's review of delivery, as ReviewOpenAlertsOperator builds it."""
    return dead_letter_check(store.dead_letters(), "maintenance_daily", undelivered=store.undelivered())


@pytest.mark.parametrize("retry_after", ["99999999999999", "inf", "1e400", "nan", "-5", "soon",
                                         "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_that_cannot_be_waited_never_raises_and_the_alert_is_dead_lettered(
        store, monkeypatch, retry_after):
    """Item 1: every POST answers 429 with a Retry-After that is absurd or not one. Each delivery
    returns (on main: OverflowError), the gate stays bounded, the review never says delivered."""
    receiver = Receiver(then=(429, "rate_limited", {"Retry-After": retry_after}))
    server = serve(monkeypatch, receiver)
    config = make_config(outbox_max_age="24h")
    try:
        for hour in range(0, 26):
            assert deliver(store, config, now=T0 + timedelta(hours=hour), sleep=lambda s: None) == 0
            gate = store.gate("slack")
            if gate is not None:
                assert gate["not_before"] <= T0 + timedelta(hours=hour, seconds=3600)
            if hour == 2:
                early = review(store)
                assert early.status == "ok" and "1 waiting to be sent" in early.summary, early.summary
                assert "was delivered" not in early.summary
    finally:
        server.__exit__(None, None, None)
    # Probed again every hour (the gate is at most an hour), then given up and counted.
    assert 20 <= len(receiver.received) <= 26
    [row] = store.outbox()
    assert row["dead_at"] is not None and row["delivered_at"] is None and "429" in row["last_error"]
    late = review(store)
    assert late.status == "fail" and late.metrics["dead_letters"] == 1 and late.metrics["undelivered"] == 0


@pytest.mark.parametrize("retry_after", ["31536000", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_one_long_retry_after_gates_slack_for_an_hour_and_the_next_message_says_so(store, monkeypatch, retry_after):
    """Item 2: a year-long Retry-After, once; Slack answers ok at once after. The gate holds an
    hour (no request), then Slack is probed, and the delivered message says how long it waited."""
    receiver = Receiver((429, "rate_limited", {"Retry-After": retry_after}))
    server = serve(monkeypatch, receiver)
    try:
        assert deliver(store, make_config(), now=T0, sleep=lambda s: None) == 0
        for minutes in (5, 30, 59):
            assert deliver(store, make_config(), now=T0 + timedelta(minutes=minutes)) == 0
        assert len(receiver.received) == 1                          # the gate is respected...
        assert deliver(store, make_config(), now=T0 + timedelta(minutes=65)) == 1   # ...for an hour, not a year
        gated = receiver.received[1]
        assert "gated for 1h 5m" in gated["text"] and "gated for 1h 5m" in json.dumps(gated["blocks"])
        assert store.gate("slack") is None                           # open again
        assess(store, make_config(), [CheckResult("api", "fail", "api down", time=T0)],
               dag_id="uptime_monitor", run_id="r2", task_id="check_endpoints", now=T0 + timedelta(hours=2))
        assert deliver(store, make_config(), now=T0 + timedelta(hours=2)) == 1
        assert "gated" not in receiver.received[2]["text"]           # said once, by the message that got through
    finally:
        server.__exit__(None, None, None)


@pytest.mark.parametrize("answer", [(200, "invalid_blocks", {}), CLOSE], ids=["200-not-ok", "closes-unanswered"])
def test_at_most_two_copies_of_an_alert_across_runs(store, monkeypatch, results_url, answer):
    """Item 3: a webhook that takes every message and answers 200 with a body other than "ok",
    or closes without answering, gets at most two copies of an alert over a day of runs (on main:
    289 and 867); then the alert is dead-lettered, counted, and never sent again."""
    from figures import report

    receiver = Receiver(then=answer)
    server = serve(monkeypatch, receiver)
    try:
        for minutes in range(0, 25 * 60, 30):    # a delivery every 30 minutes for 25 hours
            assert deliver(store, make_config(), now=T0 + timedelta(minutes=minutes), sleep=lambda s: None) == 0
    finally:
        server.__exit__(None, None, None)
    copies = len(receiver.received)
    report(f"issue 18 item 3: webhook {'closing unanswered' if answer is CLOSE else 'answering 200 not ok'}, "
           f"{results_url.split(':')[0]}: {copies} copies received in 25 h of deliveries")
    assert copies == 2
    [row] = store.outbox()
    assert row["uncertain"] == 2 and row["dead_at"] is not None and row["delivered_at"] is None
    assert review(store).status == "fail" and review(store).metrics["dead_letters"] == 1
