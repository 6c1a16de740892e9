"""Open the results store on the `maintenance_db` connection, or SQLite under AIRFLOW_HOME."""

from __future__ import annotations

import os
from pathlib import Path

from maintenance.results import ResultsStore

_stores: dict[str, ResultsStore] = {}


def results_url(conn_id: str = "maintenance_db") -> str:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
        return f"sqlite:///{home / 'maintenance_results.db'}"
    extra = conn.extra_dejson
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    uri = conn.get_uri()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix):]
    return uri


def results_store(conn_id: str = "maintenance_db") -> ResultsStore:
    url = results_url(conn_id)
    if url not in _stores:
        _stores[url] = ResultsStore(url)
    return _stores[url]
