"""The results store's schema is versioned (Alembic): an existing database gains new columns,
migrations run once under a lock however many workers start together, and a distributed
executor without a shared store is a clear error (issue #8, section 4)."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3

import pytest
import sqlalchemy as sa

from maintenance.migrations import current, head
from maintenance.results import CheckResult, ResultsStore

# The schema as the first release created it (metadata.create_all, no alembic_version).
OLD_SCHEMA = """
CREATE TABLE check_results (id INTEGER PRIMARY KEY AUTOINCREMENT, checked_at DATETIME NOT NULL,
  check_name VARCHAR(200) NOT NULL, target TEXT NOT NULL, check_group VARCHAR(100) NOT NULL,
  status VARCHAR(10) NOT NULL, summary TEXT NOT NULL, reason VARCHAR(100), metrics JSON NOT NULL,
  evidence JSON NOT NULL, runbook VARCHAR(200), provider VARCHAR(100), critical BOOLEAN NOT NULL,
  in_maintenance BOOLEAN NOT NULL, dag_id VARCHAR(250), run_id VARCHAR(250), task_id VARCHAR(250), try_number INTEGER);
CREATE TABLE alert_state (check_name VARCHAR(200) PRIMARY KEY, consecutive_failures INTEGER NOT NULL,
  consecutive_successes INTEGER NOT NULL, alerting BOOLEAN NOT NULL, failing_since DATETIME,
  last_alert_at DATETIME, last_outbox_id INTEGER, updated_at DATETIME);
CREATE TABLE alert_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL,
  kind VARCHAR(20) NOT NULL, check_name VARCHAR(200), channel VARCHAR(20) NOT NULL, payload JSON NOT NULL,
  dag_id VARCHAR(250), run_id VARCHAR(250), task_id VARCHAR(250), claim_token VARCHAR(40), claimed_at DATETIME,
  delivered_at DATETIME, cancelled_at DATETIME, attempts INTEGER NOT NULL, last_error TEXT);
INSERT INTO alert_state VALUES ('home', 3, 0, 1, '2026-11-01 00:00:00', '2026-11-01 00:10:00', NULL, NULL);
INSERT INTO alert_outbox (created_at, kind, channel, payload, attempts) VALUES ('2026-11-01 00:10:00', 'alert', 'now', '{}', 0);
"""


def test_a_database_from_before_migrations_is_adopted_and_upgraded(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    store = ResultsStore(f"sqlite:///{path}")
    assert current(store.engine) == head()
    state = store.alert_states(["home"])["home"]
    assert state["consecutive_failures"] == 3 and state["alerting"] and state["owner"] is None   # data kept
    assert store.outbox()[0]["uncertain"] == 0 and store.outbox()[0]["dead_at"] is None           # new columns
    store.record([CheckResult("home", "ok", "back")])
    assert store.gate("slack") is None


def _open(url: str, out) -> None:
    try:
        ResultsStore(url)
        out.put("ok")
    except BaseException as exc:  # noqa: BLE001
        out.put(f"{type(exc).__name__}: {exc}")


def test_eight_workers_starting_together_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    workers = [context.Process(target=_open, args=(url, out)) for _ in range(8)]
    for w in workers:
        w.start()
    answers = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert answers == ["ok"] * 8
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM maintenance_alembic_version").scalars().all() == [head()]


def test_a_distributed_executor_without_a_shared_store_is_an_error(monkeypatch):
    from maintenance.hooks.results_db import ResultsStoreNotConfigured, results_url

    monkeypatch.delenv("AIRFLOW_CONN_MAINTENANCE_DB", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(ResultsStoreNotConfigured, match="connection 'maintenance_db' is not set.*CeleryExecutor"):
        results_url("maintenance_db")
    monkeypatch.setenv("AIRFLOW_CONN_MAINTENANCE_DB", json.dumps(
        {"conn_type": "postgres", "host": "db", "login": "u", "password": "p", "schema": "results"}))
    assert results_url("maintenance_db").startswith("postgresql+psycopg2://u:p@db")
    monkeypatch.delenv("AIRFLOW_CONN_MAINTENANCE_DB")
    for local in ("LocalExecutor", "maintenance.executors.LeanLocalExecutor"):   # make run's executor
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", local)
        assert results_url("maintenance_db").startswith("sqlite:///")


def test_a_database_shared_with_airflows_metadata_keeps_both_version_tables(tmp_path):
    """Airflow's own migrations keep `alembic_version`; ours must not read or touch it."""
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
                         "INSERT INTO alembic_version VALUES ('d2f4e1b3c5a7');")
    store = ResultsStore(f"sqlite:///{path}")
    assert current(store.engine) == head()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("d2f4e1b3c5a7",)]
