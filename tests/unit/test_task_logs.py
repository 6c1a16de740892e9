"""What every task log says (issue 17, item 14): no Alembic connection lines in each task, and a
result's log level matching its status."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from maintenance import migrations
from maintenance.operators.base import log_result
from maintenance.results import CheckResult, ResultsStore


def test_no_alembic_context_lines_when_a_task_opens_the_results_store(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")   # migrates: "Running upgrade" is worth a line
    engine = sa.create_engine(store.url)
    caplog.clear()
    assert migrations.current(engine) == migrations.head()        # what every later task does
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if line.startswith(("Context impl", "Will assume"))], lines


def test_migration_steps_are_still_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    ResultsStore(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert any(r.getMessage().startswith("Running upgrade") for r in caplog.records)


def test_result_log_level_follows_its_status(caplog):
    log = logging.getLogger("maintenance.test_task_logs")
    caplog.set_level(logging.INFO, logger=log.name)
    for status in ("ok", "warn", "fail", "skipped"):
        log_result(log, CheckResult(check="homepage", status=status, summary=f"{status} summary"))
    assert [(r.levelname, r.getMessage().split()[0]) for r in caplog.records] == [
        ("INFO", "OK"), ("WARNING", "WARN"), ("ERROR", "FAIL"), ("INFO", "SKIPPED")]
