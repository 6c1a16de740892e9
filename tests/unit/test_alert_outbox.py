"""The outbox when Slack is down: an alert nobody received is cancelled by a recovery; nothing is sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from maintenance.alerting import SlackSendError, assess, deliver
from maintenance.config import MaintenanceConfig
from maintenance.results import CheckResult, ResultsStore

CONFIG = MaintenanceConfig.model_validate({
    "site": {"name": "test.example", "url": "https://test.example"},
    "alerting": {"failure_threshold": 1, "ui_base_url": "http://airflow.test"},
})
T0 = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)


def result(status: str, at: datetime) -> CheckResult:
    return CheckResult("home", status, f"home is {status}", time=at)


def test_an_alert_slack_never_took_is_not_sent_once_the_check_recovered(tmp_path):
    """A failure that recovers before its alert was delivered never pages (issue #8, 5)."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    task = ("uptime_monitor", "run-1", "check_endpoints")
    assess(store, CONFIG, [result("fail", T0)], dag_id=task[0], run_id=task[1], task_id=task[2], now=T0)

    def slack_down(text, blocks):
        raise SlackSendError("Slack answered HTTP 503", retryable=True)
    # The task's delivery: Slack is down, the alert stays in the outbox.
    assert deliver(store, CONFIG, task=task, sender=slack_down, sleep=lambda s: None, now=T0) == 0

    # The next run: home has recovered before Slack took the alert. Nobody is paged at all.
    later = T0 + timedelta(minutes=5)
    assess(store, CONFIG, [result("ok", later)], dag_id=task[0], run_id="run-2", task_id=task[2], now=later)
    sent: list[str] = []
    assert deliver(store, CONFIG, task=(task[0], "run-2", task[2]),
                   sender=lambda text, blocks: sent.append(text), now=later) == 0
    assert sent == []
    assert store.alert_states(["home"])["home"]["alerting"] is False
    row = store.outbox()[0]
    assert row["cancelled_at"] is not None and row["delivered_at"] is None


def test_with_success_threshold_2_an_undelivered_alert_is_still_cancelled(tmp_path):
    config = CONFIG.model_copy(update={"alerting": CONFIG.alerting.model_copy(update={"success_threshold": 2})})
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    task = ("uptime_monitor", "run-1", "check_endpoints")
    assess(store, config, [result("fail", T0)], dag_id=task[0], run_id=task[1], task_id=task[2], now=T0)
    later = T0 + timedelta(seconds=30)
    assess(store, config, [result("ok", later)], dag_id=task[0], run_id="run-2", task_id=task[2], now=later)
    sent: list[str] = []
    for minute in (1, 6, 11):
        at = T0 + timedelta(minutes=minute)
        assess(store, config, [result("ok", at)], dag_id=task[0], run_id=f"run-{minute}", task_id=task[2], now=at)
        deliver(store, config, sender=lambda text, blocks: sent.append(text), now=at)
    assert sent == []   # neither FAILING nor RECOVERED


def test_recovery_on_a_retry_still_cancels_the_undelivered_alert(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    task = ("uptime_monitor", "run-1", "check_endpoints")
    assess(store, CONFIG, [result("fail", T0)], dag_id=task[0], run_id=task[1], task_id=task[2], now=T0)
    retry = T0 + timedelta(seconds=30)
    assess(store, CONFIG, [result("ok", retry)], dag_id=task[0], run_id=task[1], task_id=task[2], now=retry)
    sent: list[str] = []
    assert deliver(store, CONFIG, task=task, sender=lambda text, blocks: sent.append(text), now=retry) == 0
    assert sent == []
