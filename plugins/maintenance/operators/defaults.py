"""What every DAG shares: default_args (owner, retries, the failure callback) and its runbook."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from maintenance.alerting import on_failure_callback
from maintenance.config import PROJECT_ROOT, get_config

RUNBOOKS = PROJECT_ROOT / "include" / "runbooks"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def runbook(dag_id: str) -> str:
    path = Path(RUNBOOKS / f"{dag_id}.md")
    return path.read_text(encoding="utf-8") if path.exists() else f"(runbook {path.name} is missing)"


def dag_settings(dag_id: str, *, tags: list[str], schedule: str | None) -> dict[str, Any]:
    """Keyword arguments for DAG(...). Reads the config, so a bad config is an import error."""
    tasks = get_config().tasks
    return {
        "dag_id": dag_id,
        "schedule": schedule,
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["maintenance", *tags],
        "doc_md": runbook(dag_id),
        "default_args": {
            "owner": tasks.owner,
            "retries": tasks.retries,
            "retry_delay": tasks.retry_delay,
            "on_failure_callback": on_failure_callback,
        },
    }
