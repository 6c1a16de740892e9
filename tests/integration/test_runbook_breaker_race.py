"""Eight incidents open at the same moment: the runbook circuit breaker still holds (issue #18, item 13).

Eight processes (eight check tasks on eight workers) each open a database incident at once and
start runbook_database for it through start_runbooks(). The breaker allows 2 runs an hour; the
start is claimed in the results store before Airflow is asked to create the run, so exactly 2
are triggered and the other 6 are suppressed. Before, each task read the count, triggered,
then recorded: all 8 read "0 runs in the last hour" and 8 runs started.

The trigger stands in for Airflow's execution API (TriggerDagRun through the task supervisor,
which only exists inside a running task); it takes the time a real round trip takes.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from figures import report
from maintenance.alerting import Assessment, Due
from maintenance.operators.runbook_start import start_runbooks
from maintenance.results import CheckResult, ResultsStore
from runbook_fixtures import make_config

INCIDENTS = 8
LIMIT = 2


def _incident(url: str, index: int, barrier, out) -> None:
    try:
        store = ResultsStore(url, migrate=False)
        config = make_config(runbooks={"auto_start": {"max_runs_per_hour": LIMIT}})
        ti = SimpleNamespace(dag_id="uptime_monitor", run_id=f"scheduled__{index}", task_id="check_endpoints")
        result = CheckResult(check=f"db-{index}", status="fail", summary="503", group="database")
        with store.engine.begin() as conn:
            outbox = store.enqueue(conn, kind="alert", payload={"kind": "alert", "check": result.check})
        due = Due("alert", result, 2, datetime.now(timezone.utc) - timedelta(minutes=index), outbox_id=outbox)
        triggered = []

        def trigger(dag_id, run_id, conf, note):
            time.sleep(0.2)   # the execution API's round trip
            triggered.append(run_id)
            return "started", None

        barrier.wait(timeout=60)
        done = start_runbooks(store, config, Assessment(due=[due]), {"ti": ti}, trigger)
        out.put(("ok", len(triggered), done))
    except BaseException:  # noqa: BLE001 - reported to the parent
        out.put(("error", traceback.format_exc(), None))


def simultaneous_incidents(url: str) -> dict:
    ResultsStore(url).engine.dispose()   # migrate once, then fork
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(INCIDENTS), context.Queue()
    workers = [context.Process(target=_incident, args=(url, i, barrier, queue)) for i in range(INCIDENTS)]
    for w in workers:
        w.start()
    answers = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    crashed = [a[1] for a in answers if a[0] == "error"]
    assert not crashed, crashed[0]
    rows = ResultsStore(url, migrate=False).runbook_starts("runbook_database")
    return {"triggered": sum(a[1] for a in answers), "outcomes": sorted(r["outcome"] for r in rows),
            "notes": [d for a in answers for d in a[2]]}


def check(figures: dict, name: str) -> None:
    report(f"runbook breaker ({name}, {INCIDENTS} simultaneous incidents, limit {LIMIT}/hour): "
           f"{figures['triggered']} runs started, outcomes {figures['outcomes']}")
    assert figures["triggered"] == LIMIT
    assert figures["outcomes"] == ["started"] * LIMIT + ["suppressed"] * (INCIDENTS - LIMIT)
    suppressed = [n for n in figures["notes"] if "diagnosis_note" in n]
    assert len(suppressed) == INCIDENTS - LIMIT
    assert all("circuit breaker, max 2" in n["diagnosis_note"] and n["diagnosis_url"] for n in suppressed)


def test_simultaneous_incidents_on_sqlite(tmp_path):
    check(simultaneous_incidents(f"sqlite:///{tmp_path / 'breaker.db'}"), "SQLite")


def test_simultaneous_incidents_on_postgres(postgres_url):  # noqa: F811 - the fixture
    check(simultaneous_incidents(postgres_url), "Postgres")
