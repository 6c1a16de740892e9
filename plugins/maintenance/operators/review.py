"""The base of the weekly and monthly reviews: a check operator whose warnings are also
summarised in the daily digest (once per run, whatever the retries)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maintenance.operators.base import MaintenanceCheckOperator

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class ReviewOperator(MaintenanceCheckOperator):
    """Failing results page through the base (one Slack alert); warn results go to the digest."""

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        from maintenance.alerting import enqueue_report
        from maintenance.hooks.results_db import results_store

        store = results_store(config.results.conn_id)
        ti = context["ti"]
        for result in results:
            if result.status == "warn" and not store.report_enqueued(
                    result.check, channel="digest", dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id):
                enqueue_report(store, result, context, channel="digest")
        return super().conclude(context, config, results)
