"""The alert state machine of one check: pure, no database, no Slack (Gatus semantics).

A consecutive failure is a failed run, not a try: a result from the run whose failure was
already counted (a retry) does not count again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from maintenance.config import Alerting
from maintenance.results import CheckResult


@dataclass
class Due:
    kind: str                   # alert | reminder | recovered
    result: CheckResult
    failures: int
    failing_since: datetime | None
    outbox_id: int | None = None    # runbooks (issue 10): the enqueued message, to add the diagnosis link


def fresh_state(check: str) -> dict[str, Any]:
    return {"check_name": check, "consecutive_failures": 0, "consecutive_successes": 0, "alerting": False,
            "failing_since": None, "last_alert_at": None, "last_outbox_id": None, "updated_at": None,
            "owner": None, "last_failed_run_id": None}


def next_state(result: CheckResult, state: dict[str, Any] | None, policy: Alerting, now: datetime,
               failure_threshold: int | None = None, run_id: str | None = None,
               renotify: bool | None = None) -> tuple[dict[str, Any], Due | None, bool]:
    """(new state, alert due or None, paging) after one result.

    failure_threshold overrides the config's (daily, weekly and monthly checks page on their
    first failed run).
    renotify: whether an open incident is re-paged: None, once renotify_after has passed; True,
    now (the result found something new); False, not (the same finding, still there). A retry
    of the run that already failed never re-pages.
    """
    threshold = failure_threshold or policy.failure_threshold
    state = {**fresh_state(result.check), **(state or {})}
    state["updated_at"] = now
    if result.status == "skipped":
        return state, None, False
    if result.failed:
        retry = run_id is not None and state["last_failed_run_id"] == run_id
        if not retry:
            state["consecutive_failures"] += 1
            state["last_failed_run_id"] = run_id
        state["consecutive_successes"] = 0
        state["failing_since"] = state["failing_since"] or result.time
        paging = state["consecutive_failures"] >= threshold
        due = None
        if paging and not state["alerting"]:
            state.update(alerting=True, last_alert_at=now)
            due = Due("alert", result, state["consecutive_failures"], state["failing_since"])
        elif paging and (now - state["last_alert_at"] >= policy.renotify_after if renotify is None
                         else renotify and not retry):
            state["last_alert_at"] = now
            due = Due("reminder", result, state["consecutive_failures"], state["failing_since"])
        return state, due, paging
    # ok or warn: a success
    state["consecutive_successes"] += 1
    failures, since = state["consecutive_failures"], state["failing_since"]
    state["consecutive_failures"] = 0
    state["last_failed_run_id"] = None
    if state["alerting"]:
        if state["consecutive_successes"] >= policy.success_threshold:
            state.update(alerting=False, failing_since=None)
            return state, Due("recovered", result, failures, since), False
    else:
        state["failing_since"] = None
    return state, None, False


def closed_silently(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The incident ends before anyone was told (its alert was cancelled): as if it never was."""
    return {**state, "alerting": False, "failing_since": None, "consecutive_failures": 0,
            "consecutive_successes": 1, "last_outbox_id": None, "last_failed_run_id": None, "updated_at": now}
