"""Slack delivery through SlackWebhookHook against a local webhook receiver."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from maintenance.alerting import assess, deliver
from maintenance.config import MaintenanceConfig
from maintenance.results import CheckResult, ResultsStore
from servers import SlackReceiver

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def setup(tmp_path):
    config = MaintenanceConfig.model_validate({
        "site": {"name": "t", "url": "https://t.example"},
        "alerting": {"failure_threshold": 1},
        "contacts": {"atlas": {"name": "MongoDB Atlas Support", "how": "https://support.mongodb.com",
                               "status_page": "https://status.mongodb.com"}},
    })
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    result = CheckResult(check="atlas.snapshot_age", status="fail", summary="newest snapshot is 31h old",
                         reason="stale", provider="atlas", runbook="runbook_database", time=NOW)
    assess(store, config, [result], dag_id="maintenance_daily", run_id="r1", task_id="t1", now=NOW,
           log_url="http://airflow.test/dags/maintenance_daily/runs/r1/tasks/t1?try_number=3")
    return config, store


def test_grouped_block_kit_message_with_contact_runbook_and_log(setup, monkeypatch):
    config, store = setup
    with SlackReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        assert deliver(store, config, now=NOW) == 1
    assert len(slack.messages) == 1
    message = slack.messages[0]
    assert "atlas.snapshot_age" in message["text"] and "31h" in message["text"]
    blocks = json.dumps(message["blocks"])
    for words in ("MongoDB Atlas Support", "status.mongodb.com", "runbook_database", "task log", "stale"):
        assert words in blocks, words


def test_slack_errors_are_retried_then_kept_and_never_doubled(setup, monkeypatch):
    config, store = setup
    waits = []
    with SlackReceiver(failures=[503, 503, 503]) as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        assert deliver(store, config, now=NOW, sleep=waits.append) == 0   # three tries, all refused: kept
        assert len(waits) == 2 and waits[1] > waits[0]                     # backing off
        assert slack.messages == [] and len(slack.server.requests) == 3
        assert deliver(store, config, now=NOW) == 1          # the next delivery sends it
        assert deliver(store, config, now=NOW) == 0          # and only once
    assert len(slack.messages) == 1
    row = store.outbox()[0]
    assert row["delivered_at"] is not None and row["attempts"] == 2 and "503" in row["last_error"]
    assert "XXXXSECRETXXXX" not in row["last_error"]


def test_slack_400_is_not_retried_but_kept(setup, monkeypatch):
    config, store = setup
    with SlackReceiver(failures=[400]) as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        assert deliver(store, config, now=NOW) == 0
        assert len(slack.server.requests) == 1
        assert deliver(store, config, now=NOW) == 1


def test_slack_unreachable_is_kept_without_leaking_the_webhook(setup, monkeypatch, caplog):
    from servers import free_port

    config, store = setup
    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/TOPSECRETTOKEN"
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps({"conn_type": "slackwebhook", "password": url}))
    with caplog.at_level(logging.INFO):
        assert deliver(store, config, now=NOW, sleep=lambda s: None) == 0
    assert "TOPSECRETTOKEN" not in caplog.text
    assert "TOPSECRETTOKEN" not in (store.outbox()[0]["last_error"] or "")


def test_no_slack_connection_logs_the_message(setup, monkeypatch, caplog):
    config, store = setup
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)
    with caplog.at_level(logging.WARNING):
        assert deliver(store, config, now=NOW) == 1
    assert "not configured" in caplog.text and "atlas.snapshot_age" in caplog.text
