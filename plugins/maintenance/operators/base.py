"""The base of every check operator: run checks, store, assess alerts, fail when one pages."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from maintenance.alerting import ChecksFailed, assess, deliver, task_key
from maintenance.config import MaintenanceConfig, get_config
from maintenance.hooks.results_db import results_store
from maintenance.results import CheckResult


def connection_or_none(conn_id: str) -> Any:
    """The Airflow connection, or None when it is not configured (the check is then skipped)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


class MaintenanceCheckOperator(BaseOperator):
    """Subclasses implement `run_checks(config, context)`; the rest is the one alert path."""

    ui_color = "#e8f4fd"
    # Checks that run every few minutes (uptime) alert after alerting.failure_threshold
    # consecutive failures, as in Gatus. Daily, weekly and monthly checks page on a failed run:
    # waiting for a second one would mean a day or a month of silence. Their retries re-check.
    uses_failure_threshold = False

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        raise NotImplementedError

    def execute(self, context: Any) -> list[dict[str, Any]]:
        config = get_config()
        return self.conclude(context, config, self.run_checks(config, context))

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        """Store, assess, page or deliver: the end of every check task (deferrable ones call it
        from their resume method)."""
        ti = context["ti"]
        store = results_store(config.results.conn_id)
        assessment = assess(store, config, results, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
                            try_number=ti.try_number, log_url=ti.log_url,
                            failure_threshold=None if self.uses_failure_threshold else 1)
        if assessment.due:   # runbooks (issue 10): an incident in a group with a runbook starts it, once
            from maintenance.operators.runbook_start import start_runbooks

            start_runbooks(store, config, assessment, context)
        for result in results:
            quiet = " (maintenance window: not alerted)" if result.check in assessment.in_maintenance else ""
            self.log.info("%-5s %s: %s%s", result.status.upper(), result.check, result.summary, quiet)
        if assessment.paging:
            raise ChecksFailed(assessment.paging)
        if results and all(r.status == "skipped" for r in results):
            # Checked nothing, so it delivers nothing either: a placeholder finishing first
            # would otherwise split a real task's alerts into two messages.
            raise AirflowSkipException("; ".join(r.summary for r in results))
        # Recoveries, and anything an earlier delivery could not send.
        deliver(store, config, task=task_key(context))
        return [r.to_dict() for r in results]
