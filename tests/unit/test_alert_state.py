"""Alert state over many runs, with time controlled by the test: thresholds, recovery,
re-notify interval, maintenance windows, digest routing, cancel-on-recovery, delivery."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from maintenance.alerting import assess, deliver
from maintenance.config import MaintenanceConfig
from maintenance.results import CheckResult, ResultsStore

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)


def make_config(**alerting) -> MaintenanceConfig:
    return MaintenanceConfig.model_validate({
        "site": {"name": "t", "url": "https://t.example"},
        "endpoints": [
            {"name": "home", "url": "https://t.example/", "critical": True, "conditions": ["[STATUS] == 200"]},
            {"name": "blog", "url": "https://t.example/blog", "critical": False, "conditions": ["[STATUS] == 200"]},
        ],
        "alerting": {"failure_threshold": 2, "success_threshold": 2, "renotify_after": "1h", **alerting},
        "maintenance_windows": [{"start": "2026-12-01T06:00:00Z", "duration": "1h", "endpoints": ["home"]}],
    })


class Slack:
    """Records what deliver() would post."""

    def __init__(self):
        self.posts: list[str] = []

    def __call__(self, text, blocks):
        self.posts.append(text)


@pytest.fixture
def store(tmp_path):
    return ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")


def run(store, config, status, at, check="home", critical=True, task=None):
    """One scheduled run (its own run id unless `task` names one) of one check."""
    result = CheckResult(check=check, status=status, summary=f"{check} {status}", critical=critical, time=at)
    dag_id, run_id, task_id = task or ("dag", f"run-{at:%Y%m%dT%H%M%S}", "task")
    return assess(store, config, [result], dag_id=dag_id, run_id=run_id, task_id=task_id, now=at)


def test_alert_only_after_failure_threshold_then_once(store):
    config, slack = make_config(), Slack()
    first = run(store, config, "fail", T0)
    assert first.paging == [] and first.due == []          # 1 of 2: stored, shown, not paged
    assert deliver(store, config, sender=slack, now=T0) == 0
    second = run(store, config, "fail", T0 + timedelta(minutes=5))
    assert [r.check for r in second.paging] == ["home"] and [d.kind for d in second.due] == ["alert"]
    third = run(store, config, "fail", T0 + timedelta(minutes=10))
    assert [r.check for r in third.paging] == ["home"] and third.due == []   # still failing, already alerted
    assert deliver(store, config, sender=slack, now=T0 + timedelta(minutes=10)) == 1
    assert len(slack.posts) == 1 and "FAILING home" in slack.posts[0]
    assert deliver(store, config, sender=slack, now=T0 + timedelta(minutes=11)) == 0   # nothing doubled


def test_renotify_after_interval(store):
    config, slack = make_config(), Slack()
    for minute in range(0, 65, 5):
        run(store, config, "fail", T0 + timedelta(minutes=minute))
        deliver(store, config, sender=slack, now=T0 + timedelta(minutes=minute))
    assert len(slack.posts) == 1                              # alert at 0:05, no reminder before 1:05
    run(store, config, "fail", T0 + timedelta(minutes=65))
    deliver(store, config, sender=slack, now=T0 + timedelta(minutes=65))
    assert len(slack.posts) == 2 and "STILL FAILING home" in slack.posts[1]


def test_recovery_after_success_threshold(store):
    config, slack = make_config(), Slack()
    run(store, config, "fail", T0)
    run(store, config, "fail", T0 + timedelta(minutes=5))
    deliver(store, config, sender=slack, now=T0 + timedelta(minutes=5))
    one_ok = run(store, config, "ok", T0 + timedelta(minutes=10))
    assert one_ok.due == [] and one_ok.paging == []          # 1 of 2 successes: not yet recovered
    run(store, config, "fail", T0 + timedelta(minutes=15))    # flapping resets the success count
    assert run(store, config, "ok", T0 + timedelta(minutes=20)).due == []
    recovered = run(store, config, "ok", T0 + timedelta(minutes=25))
    assert [d.kind for d in recovered.due] == ["recovered"]
    deliver(store, config, sender=slack, now=T0 + timedelta(minutes=25))
    assert len(slack.posts) == 2 and "RECOVERED home" in slack.posts[1]
    # a new incident alerts again
    run(store, config, "fail", T0 + timedelta(minutes=30))
    assert [d.kind for d in run(store, config, "fail", T0 + timedelta(minutes=35)).due] == ["alert"]


def test_recovery_before_delivery_cancels_the_alert(store):
    """The next run finds the endpoint back before Slack took the alert: nobody is paged for a blip."""
    config, slack = make_config(failure_threshold=1, success_threshold=1), Slack()
    assert [d.kind for d in run(store, config, "fail", T0).due] == ["alert"]
    assert run(store, config, "ok", T0 + timedelta(minutes=1)).due == []    # closed silently
    assert deliver(store, config, sender=slack, now=T0 + timedelta(minutes=1)) == 0
    assert slack.posts == []


def test_maintenance_window_stores_but_never_alerts(store):
    config, slack = make_config(failure_threshold=1), Slack()
    in_window = T0 + timedelta(hours=5, minutes=10)          # 06:10, window 06:00-07:00 for "home"
    for minute in range(0, 50, 5):
        at = in_window + timedelta(minutes=minute)
        assessment = run(store, config, "fail", at)
        assert assessment.paging == [] and assessment.due == [] and assessment.in_maintenance == ["home"]
        deliver(store, config, sender=slack, now=at)
    assert slack.posts == []
    rows = store.history("home")
    assert len(rows) == 10 and all(r["in_maintenance"] for r in rows)
    after = run(store, config, "fail", T0 + timedelta(hours=6, minutes=1))   # 07:01, window over
    assert [d.kind for d in after.due] == ["alert"]


def test_non_critical_checks_go_to_the_digest(store):
    config, slack = make_config(failure_threshold=1), Slack()
    run(store, config, "fail", T0, check="blog", critical=False)
    assert deliver(store, config, sender=slack, now=T0) == 0     # not paged now
    assert deliver(store, config, channel="digest", sender=slack, now=T0) == 1
    assert "FAILING blog" in slack.posts[0]


def test_undelivered_alert_is_kept_and_sent_with_the_next_message(store):
    from maintenance.alerting import SlackSendError

    config = make_config(failure_threshold=1)
    run(store, config, "fail", T0, check="home")

    def down(text, blocks):
        raise SlackSendError("Slack answered HTTP 503", retryable=True)

    waits = []
    assert deliver(store, config, sender=down, sleep=waits.append, now=T0) == 0
    assert len(waits) == 2                                   # retried with backoff before giving up
    run(store, config, "fail", T0 + timedelta(minutes=5), check="blog", critical=True,
        task=("dag", "run2", "task"))
    slack = Slack()
    assert deliver(store, config, sender=slack, task=("dag", "run2", "task"), now=T0 + timedelta(minutes=5)) == 2
    assert len(slack.posts) == 1 and "home" in slack.posts[0] and "blog" in slack.posts[0]
    assert deliver(store, config, sender=slack, now=T0 + timedelta(minutes=6)) == 0


def test_another_tasks_fresh_alert_is_left_to_it(store):
    """A task's callback does not send an alert another task may still cancel on retry."""
    config, slack = make_config(failure_threshold=1), Slack()
    run(store, config, "fail", T0, check="home", task=("dag", "run", "a"))
    assert deliver(store, config, sender=slack, task=("dag", "run", "b"), now=T0) == 0
    assert deliver(store, config, sender=slack, task=("dag", "run", "a"), now=T0) == 1


def test_skipped_results_do_not_touch_state(store):
    config = make_config(failure_threshold=1)
    assert run(store, config, "skipped", T0).due == []
    assert store.alert_states(["home"])["home"]["consecutive_failures"] == 0


def test_daily_checks_page_on_their_first_failed_run(store):
    """failure_threshold=1 override (daily/weekly/monthly operators): no day of silence."""
    config = make_config(failure_threshold=3)
    result = CheckResult(check="sentry.critical_errors", status="fail", summary="fatal", time=T0)
    assessment = assess(store, config, [result], now=T0, failure_threshold=1)
    assert [d.kind for d in assessment.due] == ["alert"] and assessment.paging == [result]


def test_renotify_false_keeps_the_incident_open_without_reminders_true_repages_once_per_run(store):
    """A finding still present (dependency scans): not re-paged, not recovered; a new one re-pages."""
    config, slack = make_config(), Slack()

    def scan(status, at, run_id, renotify):
        result = CheckResult(check="deps", status=status, summary=f"deps {status}", time=at)
        assessed = assess(store, config, [result], dag_id="weekly", run_id=run_id, task_id="scan", now=at,
                          failure_threshold=1, renotify={"deps": renotify})
        deliver(store, config, sender=slack, now=at)
        return assessed

    assert [d.kind for d in scan("fail", T0, "w1", True).due] == ["alert"]
    assert scan("fail", T0 + timedelta(days=7), "w2", False).due == []     # renotify_after (1h) long past
    assert [d.kind for d in scan("fail", T0 + timedelta(days=14), "w3", True).due] == ["reminder"]
    assert scan("fail", T0 + timedelta(days=14, hours=2), "w3", True).due == []   # a retry of that run
    assert [d.kind for d in scan("ok", T0 + timedelta(days=21), "w4", None).due] == []   # success_threshold 2
    assert [d.kind for d in scan("ok", T0 + timedelta(days=28), "w5", None).due] == ["recovered"]
    assert [p.splitlines()[1].split(" deps:")[0] for p in slack.posts] == ["FAILING", "STILL FAILING", "RECOVERED"]
