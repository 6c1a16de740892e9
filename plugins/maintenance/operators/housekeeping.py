"""Housekeeping of the orchestrator's own data: Airflow's metadata DB and the results store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import BaseOperator

from maintenance.operators.base import connection_or_none

METADATA_CONN_ID = "airflow_db"


class AirflowDbCleanOperator(BashOperator):
    """A BashOperator running `airflow db clean ...` against the metadata DB of connection `airflow_db`.

    Airflow 3 keeps tasks out of the metadata DB: the task supervisor replaces
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN in the task's environment with a blocked value, so a
    plain `airflow db clean` in a BashOperator fails ("Could not parse SQLAlchemy URL"). The
    deployment therefore hands the URL to this task on purpose, as a connection
    (AIRFLOW_CONN_AIRFLOW_DB, e.g. postgresql://user:pass@host/airflow), and only this
    command's environment gets it.
    """

    def __init__(self, *, conn_id: str = METADATA_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def execute(self, context: Any) -> Any:
        from airflow.sdk.log import mask_secret

        from maintenance.hooks.results_db import results_url

        if connection_or_none(self.conn_id) is None:
            raise RuntimeError(
                f"connection '{self.conn_id}' is not set: give the worker the metadata database URL as "
                f"AIRFLOW_CONN_{self.conn_id.upper()} (Airflow 3 hides AIRFLOW__DATABASE__SQL_ALCHEMY_CONN from tasks)"
            ) from None
        url = results_url(self.conn_id)
        mask_secret(url)
        # Set after template rendering, so the URL is never a rendered field.
        self.env = {**(self.env or {}), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
        self.append_env = True
        return super().execute(context)


class PruneResultsOperator(BaseOperator):
    """Delete check results (and delivered or cancelled alerts) older than results.retention_days."""

    def execute(self, context: Any) -> int:
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store

        config = get_config()
        days = config.results.retention_days
        deleted = results_store(config.results.conn_id).prune(timedelta(days=days))
        self.log.info("results store: %d check result(s) older than %d days deleted", deleted, days)
        return deleted
