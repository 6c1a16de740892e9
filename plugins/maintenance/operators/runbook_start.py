"""The runbooks start themselves: when a check in a group with a runbook opens an incident, the
task that saw it starts that runbook's DAG run, once, and the alert links to it.

Mechanism: the task asks Airflow's execution API to create the run, exactly as
TriggerDagRunOperator does (the TriggerDagRun message its task runner sends through the
supervisor: POST /execution/dag-runs/{dag_id}/{run_id}, run type operator-triggered). Why not an
asset event: outlet events are only emitted when a task *succeeds*, and a check task with an
open incident fails (that is how it retries and pages). Why not the public REST API: it needs
API credentials and the API server's address on every worker, and the execution API is already
the task's channel. The run id is derived from the incident (`incident__<start>__<check>`), so a
retry of the same task, or another worker, gets "already exists" rather than a second run, and
the alert can link to the run before it has even started.

Once per incident: a run is started when a check's alert opens (alert state `alerting` flips on),
not on the following failing runs. Circuit breaker: at most runbooks.auto_start.max_runs_per_hour
runs of one runbook in a rolling hour, each claimed in the results store before it is triggered
(ResultsStore.claim_runbook_start); past it the alert says so and links the latest run.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.alerting import Assessment, Due
    from maintenance.config import MaintenanceConfig
    from maintenance.results import ResultsStore

log = logging.getLogger(__name__)


def runbook_for(due: Due, config: MaintenanceConfig) -> str | None:
    from maintenance.config import RUNBOOK_DAGS

    groups = config.runbooks.auto_start.groups
    if due.result.group in groups:
        return groups[due.result.group]
    return due.result.runbook if due.result.runbook in RUNBOOK_DAGS else None


def incident_run_id(due: Due) -> str:
    since = due.failing_since or due.result.time
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", due.result.check)[:80]
    return f"incident__{since.strftime('%Y%m%dT%H%M%S')}__{slug}"


def trigger_dag_run(dag_id: str, run_id: str, conf: dict[str, Any], note: str) -> tuple[str, str | None]:
    """Ask Airflow to create the run (as TriggerDagRunOperator does): (started|exists|error, detail)."""
    from maintenance.results import utcnow

    try:
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        answer = SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=dag_id, run_id=run_id, conf=conf, logical_date=None,
                                                     run_after=utcnow(), reset_dag_run=False, note=note))
    except Exception as exc:  # noqa: BLE001 - starting a diagnosis must never stop the alert
        return "error", f"{type(exc).__name__}: {str(exc)[:200]}"
    if isinstance(answer, ErrorResponse):
        if answer.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            return "exists", None
        return "error", f"{answer.error}: {str(answer.detail)[:200]}"
    return "started", None


def start_runbooks(store: ResultsStore, config: MaintenanceConfig, assessment: Assessment, context: Any,
                   trigger=trigger_dag_run) -> list[dict[str, Any]]:
    """Start the runbooks of the incidents this assessment opened; link them in the alerts."""
    from maintenance.config import RUNBOOK_DAGS
    from maintenance.results import utcnow

    from maintenance.operators.runbooks import run_url

    settings = config.runbooks.auto_start
    ti = context["ti"]
    if not settings.enabled or ti.dag_id in RUNBOOK_DAGS:
        return []
    wanted: dict[str, list[Due]] = {}
    for due in assessment.due:
        runbook = runbook_for(due, config) if due.kind == "alert" else None
        if runbook:
            wanted.setdefault(runbook, []).append(due)
    done = []
    now = utcnow()
    for runbook, dues in wanted.items():
        checks = [d.result.check for d in dues]
        first = min(dues, key=lambda d: d.failing_since or d.result.time)
        run_id = incident_run_id(first)
        common = dict(runbook=runbook, checks=checks, dag_id=ti.dag_id, source_run_id=ti.run_id, task_id=ti.task_id)
        # Claimed before the trigger, in one transaction with the count: eight tasks opening
        # incidents at the same moment start exactly max_runs_per_hour runs, not eight.
        claim, recent = store.claim_runbook_start(run_id=run_id, limit=settings.max_runs_per_hour,
                                                  window=timedelta(hours=1), now=now, **common)
        if claim is None:
            note = (f"runbook {runbook} not started: {len(recent)} runs in the last hour "
                    f"(circuit breaker, max {settings.max_runs_per_hour})")
            store.record_runbook_start(run_id=None, outcome="suppressed", detail=note, now=now, **common)
            extra = {"diagnosis_note": note, "diagnosis_url": run_url(runbook, recent[-1]["run_id"], config)}
        else:
            conf = {"incident": {"checks": checks, "dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
                                 "summary": first.result.summary[:300],
                                 "failing_since": (first.failing_since or first.result.time).isoformat()}}
            outcome, detail = trigger(runbook, run_id, conf, f"incident: {', '.join(checks)[:200]}")
            store.settle_runbook_start(claim, outcome, detail)
            if outcome == "error":
                log.warning("runbook %s not started: %s", runbook, detail)
                extra = {"diagnosis_note": f"runbook {runbook} could not be started ({detail})"}
            else:
                log.info("runbook %s %s: run %s", runbook, outcome, run_id)
                extra = {"diagnosis_url": run_url(runbook, run_id, config), "diagnosis_run_id": run_id}
        for due in dues:
            if due.outbox_id is not None:
                store.extend_payload(due.outbox_id, extra)
        done.append({"runbook": runbook, **extra})
    return done
