"""Test-wide setup: an isolated AIRFLOW_HOME (SQLite) pointed at this repo's dags and plugins.

Environment variables are set before anything imports Airflow, which reads them at import.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_home = Path(tempfile.mkdtemp(prefix="maintenance-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_home),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_home / 'airflow.db'}",
    "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
    "MAINTENANCE_CONFIG": str(ROOT / "include" / "config" / "maintenance.yaml"),
})
sys.path.insert(0, str(ROOT / "plugins"))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (about 4 s, once per session)."""
    from airflow.utils import db

    db.initdb()
    return _home


@pytest.fixture
def postgres_url():
    """A fresh database on the local PostgreSQL (127.0.0.1:5432, trust auth), dropped after."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    name = f"maint_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 (.ci/run starts it): {exc}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def results_url(request, tmp_path):
    """The results store's URL on each database it runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="module")
def moto_url():
    """moto's S3 over HTTP, one server per test module."""
    from servers import moto_server

    with moto_server() as url:
        yield url


def pytest_terminal_summary(terminalreporter) -> None:
    from figures import FIGURES

    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
