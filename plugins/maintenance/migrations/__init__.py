"""The results store's schema, versioned with Alembic (versions/ holds one file per change).

`upgrade(engine)` brings a database to the newest revision, once per process and under a lock
(Postgres: an advisory lock; SQLite: an exclusive lock file beside the database), so eight
workers starting together migrate it exactly once. Databases created before migrations
existed (tables, no alembic_version) are adopted by revision 0001, which only creates what
is missing.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
_ADVISORY_LOCK_ID = 7_311_202_611   # any constant: "the results store is being migrated"
VERSION_TABLE = "maintenance_alembic_version"   # not Airflow's alembic_version: the database may be shared
_done: set[str] = set()
_guard = threading.Lock()


class _QuietContext(logging.Filter):
    """Drops Alembic's per-connection lines ("Context impl SQLiteImpl.", "Will assume non-transactional
    DDL."): every task checks the revision, so they filled every task log. "Running upgrade ..." stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Context impl ", "Will assume "))


logging.getLogger("alembic.runtime.migration").addFilter(_QuietContext())


def _config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE)).get_current_head()


def current(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


@contextmanager
def _migration_lock(engine: sa.Engine, conn: sa.Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_ADVISORY_LOCK_ID})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_ADVISORY_LOCK_ID})")
        return
    database = engine.url.database
    lock_path = Path(database + ".migrate.lock") if database and database != ":memory:" else None
    if lock_path is None:
        yield
        return
    with open(lock_path, "a+") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def upgrade(engine: sa.Engine) -> None:
    """Migrate to the newest revision (a no-op when it is there already)."""
    key = str(engine.url)
    with _guard:
        if key in _done:
            return
        newest = head()
        if current(engine) != newest:
            from alembic import command

            with engine.connect() as conn:
                with _migration_lock(engine, conn):
                    if conn.in_transaction():
                        conn.commit()
                    command.upgrade(_config(conn), "head")
                    if conn.in_transaction():
                        conn.commit()
        _done.add(key)
