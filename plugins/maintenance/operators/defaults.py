"""What every DAG shares: the DAG class, default_args (owner, retries, the failure callback) and
its runbook; scheduled DAGs also watch themselves: heartbeat pings (heartbeat.py) and a deadline
(deadlines.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from maintenance import heartbeat
from maintenance.deadlines import deadline_alert
from maintenance.notifications.slack import task_failure_notifier
from maintenance.parse_settings import PROJECT_ROOT, dag_defaults

RUNBOOKS = PROJECT_ROOT / "include" / "runbooks"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class MaintenanceDAG(DAG):
    """airflow.sdk.DAG whose test() (`airflow dags test`, dag.test()) runs without the deadline.

    Airflow 3.3.2's dag.test() hands DagRun.update_state an in-memory copy of the DAG whose
    deadlines are still definitions, not the ids the DAG processor gives them, and a
    *successful* run then fails looking them up (StatementError: 'dict' object has no attribute
    'hex'). A dag.test() run is never queued, so a DAGRUN_QUEUED_AT deadline would not be set
    for it anyway: dropping the deadline for the duration of test() loses nothing. The DAG
    processor and the scheduler never call test(): they serialize and keep the deadline.
    """

    def test(self, *args: Any, **kwargs: Any) -> Any:
        deadline, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = deadline


def runbook(dag_id: str) -> str:
    path = Path(RUNBOOKS / f"{dag_id}.md")
    return path.read_text(encoding="utf-8") if path.exists() else f"(runbook {path.name} is missing)"


def dag_settings(dag_id: str, *, tags: list[str], schedule: Any) -> dict[str, Any]:
    """Keyword arguments for DAG(...), from the config's parse-time values (parse_settings.py:
    cheap, and a bad config edit keeps the last valid values instead of breaking the DAG)."""
    defaults = dag_defaults()
    settings = {
        "dag_id": dag_id,
        "schedule": schedule,
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["maintenance", *tags],
        "doc_md": runbook(dag_id),
        "default_args": {
            "owner": defaults["owner"],
            "retries": defaults["retries"],
            "retry_delay": defaults["retry_delay"],
            "on_failure_callback": task_failure_notifier(),
        },
    }
    if schedule is not None:
        self_watch(settings, defaults["late_after"])
    return settings


def self_watch(settings: dict[str, Any], late_after_by_dag: dict[str, Any]) -> None:
    """Heartbeat pings (start, success, fail) and the deadline alert of a scheduled DAG."""
    settings["on_success_callback"] = heartbeat.on_dag_success
    settings["on_failure_callback"] = heartbeat.on_dag_failure
    settings["default_args"]["on_execute_callback"] = heartbeat.on_run_start
    late_after = late_after_by_dag.get(settings["dag_id"])
    if late_after is not None:
        settings["deadline"] = deadline_alert(settings["dag_id"], late_after)
