"""Housekeeping of the orchestrator's own data: the results store's retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator

from maintenance.config import get_config
from maintenance.hooks.results_db import results_store


class PruneResultsOperator(BaseOperator):
    """Delete check results (and delivered or cancelled alerts) older than results.retention_days."""

    def execute(self, context: Any) -> int:
        config = get_config()
        days = config.results.retention_days
        deleted = results_store(config.results.conn_id).prune(timedelta(days=days))
        self.log.info("results store: %d check result(s) older than %d days deleted", deleted, days)
        return deleted
