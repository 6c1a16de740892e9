"""assess(): store a task's results, move each check's alert state, enqueue what is due.

All of it is one transaction with the state rows locked (ResultsStore.transaction), so eight
workers assessing the same checks at once lose no update and enqueue one alert per change;
the locks are taken in one order whatever order the results come in, so they never deadlock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maintenance.alerting.state import Due, closed_silently, next_state
from maintenance.config import MaintenanceConfig
from maintenance.exceptions import ChecksFailed  # noqa: F401 - re-exported
from maintenance.hooks.http_policy import redact
from maintenance.results import CheckResult, ResultsStore, utcnow

log = logging.getLogger(__name__)


@dataclass
class Assessment:
    paging: list[CheckResult] = field(default_factory=list)   # at/past threshold: fail the task
    due: list[Due] = field(default_factory=list)
    in_maintenance: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def assess(store: ResultsStore, config: MaintenanceConfig, results: list[CheckResult], *,
           dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None,
           try_number: int | None = None, log_url: str | None = None,
           now: datetime | None = None, failure_threshold: int | None = None,
           complete: bool = False, immediate: frozenset[str] = frozenset(),
           cancel_undelivered: bool = True,
           renotify: dict[str, bool] | None = None) -> Assessment:
    """Store results, update alert states and enqueue the alerts due now (one transaction).

    complete: these results are every check the task owns, so an open alert of a check that
    is no longer among them (removed or renamed in the config) is resolved.
    immediate: checks that page on their first failed run whatever the threshold (`config`).
    cancel_undelivered: False for the uptime watcher, whose alerts are announced as asset events
    the moment they open: a recovery then follows its alert instead of cancelling it.
    renotify: per check, whether its open incident is re-paged now (state.next_state); a check
    not named is re-paged after alerting.renotify_after.
    """
    now = now or utcnow()
    policy = config.alerting
    assessment = Assessment(in_maintenance=[r.check for r in results if config.in_maintenance(r.check, now)])
    quiet = set(assessment.in_maintenance)
    owner = f"{dag_id}.{task_id}" if dag_id and task_id else None
    context = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number, "log_url": log_url}
    counted = [r for r in results if r.check not in quiet]
    with store.transaction() as conn:
        # Locks in one global order (no deadlocks between workers listing checks differently):
        # every alert state first, by name, then the history's rows (record() sorts its own).
        states = store.lock_alert_states(conn, (r.check for r in counted),
                                         owner=owner if complete else None)
        store.record(results, dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=try_number,
                     in_maintenance=quiet, conn=conn)
        new_states = []
        for result in counted:
            state = states[result.check]
            state["owner"] = owner or state.get("owner")
            if cancel_undelivered and not result.failed and result.status != "skipped" and state["alerting"] \
                    and state["last_outbox_id"] and store.cancel(conn, state["last_outbox_id"], now):
                # Recovered before anyone was told: nobody is paged, whatever success_threshold is.
                log.info("%s recovered before its alert was delivered: alert cancelled", result.check)
                new_states.append(closed_silently(state, now))
                continue
            threshold = 1 if result.check in immediate else failure_threshold
            state, due, paging = next_state(result, state, policy, now, threshold, run_id,
                                             (renotify or {}).get(result.check))
            if paging:
                assessment.paging.append(result)
            if due is not None:
                assessment.due.append(due)
                if due.kind != "recovered" or policy.send_on_resolved:
                    outbox_id = store.enqueue(
                        conn, kind=due.kind, payload=_payload(due, **context), check=result.check,
                        channel="now" if result.critical else "digest",
                        dag_id=dag_id, run_id=run_id, task_id=task_id, now=now)
                    state["last_outbox_id"] = outbox_id if due.kind != "recovered" else None
                    due.outbox_id = outbox_id
                else:
                    state["last_outbox_id"] = None
            new_states.append(state)
        store.save_alert_states(new_states, conn)
        if complete and owner:
            assessment.removed = _resolve_removed(store, conn, config, owner, {r.check for r in results}, now, context)
    return assessment


def _resolve_removed(store: ResultsStore, conn: Any, config: MaintenanceConfig, owner: str, present: set[str],
                     now: datetime, context: dict[str, Any]) -> list[str]:
    """Close the incidents of checks this task no longer runs; forget their state."""
    gone = {name: s for name, s in store.owned_states(conn, owner).items() if name not in present}
    for name, state in gone.items():
        if not state["alerting"]:
            continue
        if state["last_outbox_id"] and store.cancel(conn, state["last_outbox_id"], now):
            continue   # nobody was told it failed: nothing to resolve
        payload = {"kind": "recovered", "check": name, "target": "", "group": "", "status": "ok",
                   "summary": "removed from the config: alert resolved", "reason": "removed",
                   "runbook": context.get("dag_id"), "provider": None, "failures": state["consecutive_failures"],
                   "failing_since": state["failing_since"].isoformat() if state["failing_since"] else None,
                   "checked_at": now.isoformat(), "metrics": {}, **context}
        store.enqueue(conn, kind="recovered", payload=payload, check=name, channel="now",
                      dag_id=context.get("dag_id"), run_id=context.get("run_id"), task_id=context.get("task_id"),
                      now=now)
    if gone:
        store.forget_states(conn, gone)
    return sorted(gone)


def _payload(due: Due, **context: Any) -> dict[str, Any]:
    r = due.result
    return {
        "kind": due.kind, "check": r.check, "target": r.target, "group": r.group, "status": r.status,
        "summary": r.summary, "reason": r.reason, "runbook": r.runbook, "provider": r.provider,
        "failures": due.failures, "failing_since": due.failing_since.isoformat() if due.failing_since else None,
        "checked_at": r.time.isoformat(), "metrics": r.metrics, **context,
    }


def describe_error(error: BaseException | None) -> str:
    """One redacted line: the exception type and the first line of its message."""
    if error is None:
        return "the task failed without an exception"
    first = (str(error).strip().splitlines() or [""])[0]
    return redact(f"{type(error).__name__}: {first}")[:300]


def task_key(context: dict[str, Any]) -> tuple[str, str, str] | None:
    ti = context.get("ti") or context.get("task_instance")
    return (ti.dag_id, ti.run_id, ti.task_id) if ti is not None else None


def ti_fields(context: dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return {}
    try:
        log_url = ti.log_url
    except Exception:  # noqa: BLE001 - a missing base_url must not stop the alert
        log_url = None
    return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
            "try_number": getattr(ti, "try_number", None), "log_url": log_url}


def crash_payload(context: dict[str, Any], error: BaseException | None, note: str = "") -> dict[str, Any]:
    fields = ti_fields(context)
    # The DAG's own doc_md is the runbook for its tasks.
    return {"kind": "crash", "check": None, "summary": describe_error(error) + note,
            "runbook": fields.get("dag_id"), **fields}


def enqueue_crash(store: ResultsStore, context: dict[str, Any], error: BaseException | None) -> None:
    payload = crash_payload(context, error)
    with store.engine.begin() as conn:
        store.enqueue(conn, kind="crash", payload=payload, dag_id=payload.get("dag_id"),
                      run_id=payload.get("run_id"), task_id=payload.get("task_id"))


def enqueue_report(store: ResultsStore, result: CheckResult, context: dict[str, Any], channel: str = "report") -> None:
    """An informational message (e.g. manual_backup's snapshot id), sent by `deliver(channel=...)`."""
    payload = {"kind": "report", "check": result.check, "target": result.target, "group": result.group,
               "status": result.status, "summary": result.summary, "reason": None, "runbook": result.runbook,
               "provider": result.provider, "checked_at": result.time.isoformat(), "metrics": result.metrics,
               **ti_fields(context)}
    with store.engine.begin() as conn:
        store.enqueue(conn, kind="report", payload=payload, check=result.check, channel=channel,
                      dag_id=payload.get("dag_id"), run_id=payload.get("run_id"), task_id=payload.get("task_id"))


# -- runbooks (issue 10): one diagnosis message per runbook run ---------------------------------
def enqueue_diagnosis(store: ResultsStore, result: CheckResult, body: str, context: dict[str, Any],
                      channel: str = "diagnosis") -> None:
    """A runbook's diagnosis: `result.summary` is the headline, `body` the mrkdwn shown under it."""
    payload = {"kind": "diagnosis", "check": result.check, "status": result.status, "summary": result.summary,
               "body": body, "runbook": result.runbook, "provider": result.provider,
               "checked_at": result.time.isoformat(), **ti_fields(context)}
    with store.transaction() as conn:
        store.enqueue(conn, kind="diagnosis", payload=payload, check=result.check, channel=channel,
                      dag_id=payload.get("dag_id"), run_id=payload.get("run_id"), task_id=payload.get("task_id"))
# -- end runbooks -----------------------------------------------------------------------------


def enqueue_once(store: ResultsStore, payload: dict[str, Any]) -> bool:
    """Enqueue a run-level message (kind 'late', 'config') at most once per DAG run."""
    with store.transaction() as conn:
        if store.has_message(conn, kind=payload["kind"], dag_id=payload["dag_id"], run_id=payload["run_id"]):
            return False
        store.enqueue(conn, kind=payload["kind"], payload=payload, dag_id=payload["dag_id"],
                      run_id=payload["run_id"], task_id=payload.get("task_id"))
        return True
