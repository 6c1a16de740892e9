"""The outbox when Slack is down: an owed alert is never cancelled, and never sent twice."""

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


def test_alert_kept_through_a_slack_outage_goes_out_with_the_recovery(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    task = ("uptime_monitor", "run-1", "check_endpoints")
    assess(store, CONFIG, [result("fail", T0)], dag_id=task[0], run_id=task[1], task_id=task[2], now=T0)

    def slack_down(text, blocks):
        raise SlackSendError("Slack answered HTTP 503", retryable=True)
    # The failure callback after the last try: Slack is down, the alert stays in the outbox.
    assert deliver(store, CONFIG, task=task, sender=slack_down, sleep=lambda s: None, now=T0) == 0

    # The next run: home has recovered. The owed alert is not cancelled...
    later = T0 + timedelta(minutes=5)
    assess(store, CONFIG, [result("ok", later)], dag_id=task[0], run_id="run-2", task_id=task[2], now=later)
    sent: list[str] = []
    assert deliver(store, CONFIG, task=(task[0], "run-2", task[2]),
                   sender=lambda text, blocks: sent.append(text), now=later) == 2
    # ...and goes out once, with the recovery.
    assert len(sent) == 1 and "FAILING home" in sent[0] and "RECOVERED home" in sent[0]
    assert deliver(store, CONFIG, sender=lambda text, blocks: sent.append(text), now=later) == 0
    assert len(sent) == 1


def test_recovery_on_a_retry_still_cancels_the_undelivered_alert(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    task = ("uptime_monitor", "run-1", "check_endpoints")
    assess(store, CONFIG, [result("fail", T0)], dag_id=task[0], run_id=task[1], task_id=task[2], now=T0)
    retry = T0 + timedelta(seconds=30)
    assess(store, CONFIG, [result("ok", retry)], dag_id=task[0], run_id=task[1], task_id=task[2], now=retry)
    sent: list[str] = []
    assert deliver(store, CONFIG, task=task, sender=lambda text, blocks: sent.append(text), now=retry) == 0
    assert sent == []
