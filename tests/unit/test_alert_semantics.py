"""Alert semantics users can predict (issue #8, section 5): a consecutive failure is a failed
run, not a try; a check removed from the config resolves its alert at the next run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from maintenance.alerting import assess, deliver
from maintenance.config import MaintenanceConfig
from maintenance.results import CheckResult, ResultsStore

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
TASK = ("uptime_monitor", "check_endpoints")


class Slack:
    def __init__(self):
        self.posts: list[str] = []

    def __call__(self, text, blocks):
        self.posts.append(text)


@pytest.fixture
def store(tmp_path):
    return ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")


CONFIG = MaintenanceConfig.model_validate({"site": {"name": "t", "url": "https://t.example"},
                                           "alerting": {"failure_threshold": 2}})


def sweep(store, statuses: dict[str, str], run: int, try_number: int = 1, complete: bool = True):
    at = T0 + timedelta(minutes=5 * run, seconds=30 * (try_number - 1))
    results = [CheckResult(check=c, status=s, summary=f"{c} {s}", time=at) for c, s in statuses.items()]
    return assess(store, CONFIG, results, dag_id=TASK[0], run_id=f"scheduled-{run}", task_id=TASK[1],
                  try_number=try_number, now=at, complete=complete)


def test_retries_of_one_run_count_as_one_failure(store):
    """A flapping endpoint down in one run only is never paged, however often that run is retried."""
    slack = Slack()
    for try_number in (1, 2, 3):   # e.g. the task crashed after assessing and was retried
        assessment = sweep(store, {"home": "ok", "flappy": "fail"}, run=1, try_number=try_number)
        assert assessment.paging == [] and assessment.due == []
    assert store.alert_states(["flappy"])["flappy"]["consecutive_failures"] == 1
    sweep(store, {"home": "ok", "flappy": "ok"}, run=2)
    deliver(store, CONFIG, sender=slack, now=T0 + timedelta(minutes=10))
    assert slack.posts == []


def test_the_run_that_reaches_the_threshold_pages(store):
    sweep(store, {"home": "fail"}, run=1)
    assessment = sweep(store, {"home": "fail"}, run=2)
    assert [d.kind for d in assessment.due] == ["alert"] and assessment.paging


def test_a_check_removed_while_alerting_is_resolved_at_the_next_run(store):
    slack = Slack()
    sweep(store, {"home": "ok", "old-api": "fail"}, run=1)
    sweep(store, {"home": "ok", "old-api": "fail"}, run=2)
    deliver(store, CONFIG, sender=slack, now=T0 + timedelta(minutes=10))
    assert len(slack.posts) == 1 and "FAILING old-api" in slack.posts[0]
    # old-api is removed (or renamed) in the config: the next run resolves it, once.
    assessment = sweep(store, {"home": "ok"}, run=3)
    assert assessment.removed == ["old-api"]
    deliver(store, CONFIG, sender=slack, now=T0 + timedelta(minutes=15))
    assert len(slack.posts) == 2 and "RECOVERED old-api" in slack.posts[1] and "removed from the config" in slack.posts[1]
    for run in (4, 5):   # and it is not reported again
        sweep(store, {"home": "ok"}, run=run)
        deliver(store, CONFIG, sender=slack, now=T0 + timedelta(minutes=5 * run))
    assert len(slack.posts) == 2
    assert "old-api" not in store.alert_states()


def test_a_removed_check_whose_alert_never_went_out_is_dropped_silently(store):
    slack = Slack()
    sweep(store, {"home": "ok", "old-api": "fail"}, run=1)
    sweep(store, {"home": "ok", "old-api": "fail"}, run=2)      # alert enqueued, not delivered yet
    sweep(store, {"home": "ok"}, run=3)
    deliver(store, CONFIG, sender=slack, now=T0 + timedelta(minutes=15))
    assert slack.posts == []


def test_checks_of_other_tasks_are_not_touched(store):
    sweep(store, {"home": "ok", "api": "fail"}, run=1)
    other = CheckResult(check="sentry.errors", status="fail", summary="x", time=T0)
    assess(store, CONFIG, [other], dag_id="maintenance_daily", run_id="d1", task_id="monitor_error_logs", now=T0,
           complete=True)
    assert {"home", "api", "sentry.errors"} <= set(store.alert_states())
