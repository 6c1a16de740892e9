"""Open the results store on the `maintenance_db` connection, or SQLite under AIRFLOW_HOME."""

from __future__ import annotations

from maintenance.parse_settings import airflow_home
from maintenance.results import ResultsStore

_stores: dict[str, ResultsStore] = {}
LOCAL_EXECUTORS = {"LocalExecutor", "LeanLocalExecutor", "SequentialExecutor", "DebugExecutor"}


class ResultsStoreNotConfigured(RuntimeError):
    """A shared results store is required (a distributed executor) but none is configured."""


def _executor() -> str:
    from airflow.configuration import conf

    return conf.get("core", "executor", fallback="LocalExecutor") or "LocalExecutor"


def results_url(conn_id: str = "maintenance_db") -> str:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return url_without_connection(conn_id)
    return url_of_connection(conn)


def url_without_connection(conn_id: str) -> str:
    """The local SQLite file, when the executor is local; else ResultsStoreNotConfigured."""
    executor = _executor()
    if not all(name.strip().split(".")[-1] in LOCAL_EXECUTORS for name in executor.split(",")):
        # Every worker, the triggerer and the DAG processor would each write their own
        # SQLite file: failure counts, cancellations and the cross-check would silently break.
        raise ResultsStoreNotConfigured(
            f"connection '{conn_id}' is not set, and the executor is {executor}: its workers do not share "
            f"one disk, so the results store must be a shared database. Set connection '{conn_id}' "
            "(postgres, or extra.sqlalchemy_url); see docs/PRODUCTION.md")
    return f"sqlite:///{airflow_home() / 'maintenance_results.db'}"


def url_of_connection(conn) -> str:  # noqa: ANN001 - an Airflow Connection (sync or async lookup)
    extra = conn.extra_dejson
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    uri = conn.get_uri()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix):]
    return uri


def store_at(url: str) -> ResultsStore:
    """One ResultsStore per URL and process (opening one migrates the schema once)."""
    if url not in _stores:
        _stores[url] = ResultsStore(url)
    return _stores[url]


def results_store(conn_id: str = "maintenance_db") -> ResultsStore:
    return store_at(results_url(conn_id))
