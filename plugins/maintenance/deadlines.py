"""Deadline alerts: Slack is told when a scheduled DAG's run is late (Airflow 3 DeadlineAlert).

Each scheduled DAG with an entry in the config's `heartbeat.late_after` gets
    DeadlineAlert(reference=DAGRUN_QUEUED_AT, interval=late_after, callback=AsyncCallback(run_is_late))
The scheduler notices the missed deadline (even if the run never finishes) and the triggerer
awaits `run_is_late`, which must therefore live here in plugins/, not in dags/. It goes
through the one alert path: a "late" message in the outbox, delivered with anything else
pending, so a Slack outage delays it without losing it.

Airflow 3.3.2 prunes a run's deadlines only when the run succeeds (DagRun.update_state), so the
scheduler also "misses" the deadline of a run that failed long before it. The callback's
context is the run as the scheduler read it at the deadline: a run that had finished by then,
whatever its state, was not late and is not reported (`finished_before_deadline`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from maintenance.durations import format_duration

log = logging.getLogger(__name__)

TASK_ID = "deadline"    # the outbox's task_id for these messages


def deadline_alert(dag_id: str, late_after: timedelta) -> Any:
    """The DeadlineAlert of one DAG (built at parse time; airflow.sdk is already imported then)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=late_after,
        callback=AsyncCallback(run_is_late, kwargs={"dag_id": dag_id,
                                                    "late_after": format_duration(late_after.total_seconds())}),
    )


async def run_is_late(dag_id: str, late_after: str, context: dict[str, Any] | None = None) -> int:
    """The AsyncCallback (triggerer). The database and Slack calls are blocking: off the event loop."""
    return await asyncio.to_thread(alert_late, dag_id, late_after, context or {})


def finished_before_deadline(dag_run: dict[str, Any], deadline_time: Any) -> bool:
    """Whether the run (the context's DAGRunResponse) had ended by its deadline, successful or not.

    Without an end date (still running, or a context without the run) it had not.
    """
    end_date = _as_datetime(dag_run.get("end_date"))
    if end_date is None:
        return False
    deadline = _as_datetime(deadline_time)
    return deadline is None or end_date <= deadline


def _as_datetime(value: Any) -> datetime | None:
    """A datetime or ISO string (the context is JSON on its way to the triggerer) as aware UTC."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def alert_late(dag_id: str, late_after: str, context: dict[str, Any]) -> int:
    """Enqueue one 'late' message for the run (idempotent) and deliver the outbox; returns the number sent.

    A run that finished before its deadline is not late: nothing is enqueued (returns 0).
    """
    dag_run = context.get("dag_run") or {}
    deadline_time = (context.get("deadline") or {}).get("deadline_time")
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    if finished_before_deadline(dag_run, deadline_time):
        log.info("%s run %s ended (%s) at %s, before its deadline %s: not late",
                 dag_id, run_id, dag_run.get("state"), dag_run.get("end_date"), deadline_time)
        return 0

    from maintenance.alerting import enqueue_once, ui_base_url
    from maintenance.config import get_config
    from maintenance.hooks.results_db import results_store
    from maintenance.notifications.slack import MaintenanceNotifier

    config = get_config()
    store = results_store(config.results.conn_id)
    ui_base = ui_base_url(config)
    payload = {
        "kind": "late", "check": None, "dag_id": dag_id, "run_id": run_id, "task_id": TASK_ID,
        "summary": f"run still not finished {late_after} after it was queued"
                   + (f" (deadline {deadline_time})" if deadline_time else ""),
        "runbook": dag_id, "log_url": f"{ui_base}/dags/{dag_id}/runs/{run_id}",
    }
    enqueue_once(store, payload)   # a trigger may run more than once: one message per run
    log.warning("%s run %s is late (%s)", dag_id, run_id, late_after)
    return MaintenanceNotifier().deliver({"ti": _RunRef(dag_id, run_id, TASK_ID)})


class _RunRef:
    """The task key of a deadline message (the notifier scopes delivery by it)."""

    def __init__(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number, self.log_url = dag_id, run_id, task_id, None, None
