"""A report a task puts on a channel is enqueued once per run: a retry of the task (the same
dag, run and task) does not post it again; another run does."""

from __future__ import annotations

from types import SimpleNamespace

from maintenance.operators.base import enqueue_report_once
from maintenance.results import CheckResult, ResultsStore


def test_a_retry_does_not_enqueue_the_report_again_another_run_does(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    result = CheckResult(check="audit.summary", status="ok", summary="the month")

    def context(run_id: str, try_number: int) -> dict:
        return {"ti": SimpleNamespace(dag_id="maintenance_monthly", task_id="full_system_audit", run_id=run_id,
                                      try_number=try_number, log_url=None)}

    enqueue_report_once(store, result, context("run-1", 1), channel="report")
    enqueue_report_once(store, result, context("run-1", 2), channel="report")
    enqueue_report_once(store, result, context("run-1", 2), channel="digest")
    enqueue_report_once(store, result, context("run-2", 1), channel="report")
    queued = [(m["run_id"], m["channel"]) for m in store.outbox() if m["kind"] == "report"]
    assert sorted(queued) == [("run-1", "digest"), ("run-1", "report"), ("run-2", "report")]
