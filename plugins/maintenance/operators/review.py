"""The base of the weekly and monthly reviews: a check operator whose warnings are also
summarised in the daily digest (once per run, whatever the retries)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maintenance.operators.base import MaintenanceCheckOperator, enqueue_report_once

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class ReviewOperator(MaintenanceCheckOperator):
    """Failing results page through the base (one Slack alert); warn results go to the digest."""

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        from maintenance.hooks.results_db import results_store

        store = results_store(config.results.conn_id)
        for result in results:
            if result.status == "warn":
                enqueue_report_once(store, result, context, channel="digest")
        return super().conclude(context, config, results)
