"""The runbook DAGs' operators: a diagnostic step, and the one diagnosis at the end of a run.

A step (`RunbookStepOperator(step="database.atlas_status")`) runs the function of that name in
operators/runbook_<runbook>.py, stores its results before anything else happens (the evidence
survives the incident), and never pages: a step that found a fault turns red without retrying
(nothing to re-check: the diagnosis is the message). A step that crashes stores that as a failed
result with the error, so the diagnosis still names it.

`DiagnoseOperator` (trigger_rule all_done) reads the run's results back, ranks the causes
(checks/diagnosis.py with the runbook's CAUSES) and posts ONE Slack diagnosis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from maintenance.exceptions import ChecksFailed
from maintenance.operators.base import log_result

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class StepFoundFault(ChecksFailed):
    """A runbook step or diagnosis found a fault: red, not retried (ChecksFailed is an
    AirflowFailException), not a crash: the diagnosis reports it."""


def step_function(step: str) -> Callable[[MaintenanceConfig, Any], list[CheckResult]]:
    runbook, _, name = step.partition(".")
    module = importlib.import_module(f"maintenance.operators.runbook_{runbook}")
    return getattr(module, name)


def run_url(dag_id: str, run_id: str, config: MaintenanceConfig) -> str:
    from maintenance.alerting import ui_base_url

    base = ui_base_url(config).rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


class RunbookStepOperator(BaseOperator):
    ui_color = "#fdf6e3"

    def __init__(self, *, step: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from maintenance.alerting import describe_error
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store
        from maintenance.results import CheckResult

        config = get_config()
        ti = context["ti"]
        try:
            results = step_function(self.step)(config, context)
        except Exception as exc:  # noqa: BLE001 - a crashed step is a finding, not a lost diagnosis
            self.log.exception("step %s crashed", self.step)
            results = [CheckResult(check=self.step, status="fail", reason="step_crashed", group=ti.dag_id,
                                   summary=f"the step crashed: {describe_error(exc)}")]
        for result in results:   # the shared judgements (status pages, provider failures) name no runbook
            result.runbook = result.runbook or ti.dag_id
        results_store(config.results.conn_id).record(results, dag_id=ti.dag_id, run_id=ti.run_id,
                                                      task_id=ti.task_id, try_number=ti.try_number)
        for result in results:
            log_result(self.log, result)
        failing = [r for r in results if r.failed]
        if failing:
            raise StepFoundFault(failing)
        if results and all(r.status == "skipped" for r in results):
            raise AirflowSkipException("; ".join(r.summary for r in results))
        return [r.to_dict() for r in results]


def describe_trigger(conf: dict[str, Any] | None, params: dict[str, Any] | None) -> str:
    incident = (conf or {}).get("incident")
    if isinstance(incident, dict):
        checks = ", ".join(incident.get("checks") or []) or "?"
        return (f"started automatically: {checks} failing in {incident.get('dag_id')} "
                f"(run {incident.get('run_id')})")
    shown = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
    return "started by hand" + (f" with {', '.join(f'{k}={v}' for k, v in shown.items())}" if shown else "")


class DiagnoseOperator(BaseOperator):
    """The end of every runbook run: one Slack diagnosis from the steps' stored results."""

    ui_color = "#e3f2e1"

    def __init__(self, *, steps: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.steps = steps

    def execute(self, context: Any) -> dict[str, Any]:
        from maintenance.alerting import enqueue_diagnosis
        from maintenance.checks.diagnosis import diagnose, render
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store
        from maintenance.notifications.slack import MaintenanceNotifier
        from maintenance.results import CheckResult

        config = get_config()
        ti = context["ti"]
        store = results_store(config.results.conn_id)
        runbook = ti.dag_id
        catalogue = importlib.import_module(f"maintenance.checks.runbooks.{runbook.removeprefix('runbook_')}")
        stored = store.run_results(ti.dag_id, ti.run_id)
        steps = [(task_id, stored.get(task_id, [])) for task_id in self.steps]
        dag_run = context.get("dag_run")
        trigger = describe_trigger(getattr(dag_run, "conf", None), context.get("params"))
        diagnosis = diagnose(runbook, steps, catalogue.CAUSES, config.contacts,
                             default_contacts=catalogue.CONTACTS, trigger=trigger)
        url = run_url(ti.dag_id, ti.run_id, config)
        body = render(diagnosis, run_url=url)
        root = diagnosis.root
        result = CheckResult(
            check=f"{runbook}.diagnosis", status=diagnosis.status, summary=diagnosis.headline, group=catalogue.GROUP,
            runbook=runbook, provider=(root.cause.contact or root.result.provider) if root else None,
            reason=root.cause.reason if root else None,
            evidence={"trigger": trigger, "findings": [
                {"cause": f.cause.reason, "title": f.cause.title, "step": f.step, "check": f.result.check,
                 "status": f.result.status, "summary": f.result.summary, "evidence": f.result.evidence}
                for f in diagnosis.findings],
                "steps": {line.step: line.status for line in diagnosis.steps}})
        store.record([result], dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, try_number=ti.try_number)
        enqueue_diagnosis(store, result, body, context)
        if MaintenanceNotifier(channel="diagnosis", task_scoped=False).deliver(context) == 0:
            self.log.warning("the diagnosis was not delivered now; it stays in the outbox for the next message")
        self.log.info("%s\n%s", diagnosis.headline, render(diagnosis, run_url=url, markup=False))
        if diagnosis.status == "fail":
            raise StepFoundFault([root.result] if root else [result])
        return result.to_dict()
