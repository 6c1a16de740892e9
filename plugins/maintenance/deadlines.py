"""Deadline alerts: Slack is told when a scheduled DAG's run is late (Airflow 3 DeadlineAlert).

Each scheduled DAG with an entry in the config's `heartbeat.late_after` gets
    DeadlineAlert(reference=DAGRUN_QUEUED_AT, interval=late_after, callback=AsyncCallback(run_is_late))
The scheduler notices the missed deadline (even if the run never finishes) and the triggerer
awaits `run_is_late`, which must therefore live here in plugins/, not in dags/. It goes
through the one alert path: a "late" message in the outbox, delivered with anything else
pending, so a Slack outage delays it without losing it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
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


def alert_late(dag_id: str, late_after: str, context: dict[str, Any]) -> int:
    """Enqueue one 'late' message for the run (idempotent) and deliver the outbox; returns the number sent."""
    from maintenance.alerting import enqueue_once, ui_base_url
    from maintenance.config import get_config
    from maintenance.hooks.results_db import results_store
    from maintenance.notifications.slack import MaintenanceNotifier

    dag_run = context.get("dag_run") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    if dag_run.get("state") in ("success", "failed"):
        # Airflow prunes a run's deadline when it succeeds, not when it fails: a failed run's
        # deadline still fires, and that run is finished (its failure was already told), not late.
        log.info("%s run %s ended %s before its deadline: not late", dag_id, run_id, dag_run["state"])
        return 0
    config = get_config()
    store = results_store(config.results.conn_id)
    deadline_time = (context.get("deadline") or {}).get("deadline_time")
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
