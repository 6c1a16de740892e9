"""Eight workers assess the same checks at once, on one shared store (issue #8, section 4).

Each worker is a process that runs assessment after assessment (each a scheduled run of its
own) of the same five failing checks. With the state rows locked for the whole transaction,
no failure count is lost and each check alerts exactly once; before, 75 % (SQLite) to 87 %
(Postgres) of the updates were lost, up to 3 alerts went out per check, and one worker hit
UniqueViolation after its results were committed.

The shuffled test (issue #18, item 12) has each worker assess a random subset of shared checks
in a random order (a config edited between two overlapping runs, two tasks sharing checks).
Every lock an assessment takes is taken in one global order, so no worker ever waits on a
worker that waits on it: before, Postgres raised DeadlockDetected about 4 times per success.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import traceback
from collections import Counter
from typing import Any

import sqlalchemy as sa

from figures import report
from maintenance.alerting import assess
from maintenance.config import MaintenanceConfig
from maintenance.results import CheckResult, ResultsStore, alert_outbox

WORKERS = 8
SECONDS = 4.0
CHECKS = [f"check-{i}" for i in range(5)]
CONFIG = {"site": {"name": "t", "url": "https://t.example"},
          "alerting": {"failure_threshold": 3, "renotify_after": "1000d"}}


def _worker(url: str, worker: int, deadline: float, out: "multiprocessing.Queue[tuple]") -> None:
    try:
        config = MaintenanceConfig.model_validate(CONFIG)
        store = ResultsStore(url)
        done = 0
        while time.time() < deadline:
            results = [CheckResult(check=c, status="fail", summary="down") for c in CHECKS]
            assess(store, config, results, dag_id="uptime_monitor", run_id=f"w{worker}-{done}",
                   task_id="check_endpoints", failure_threshold=None)
            done += 1
        out.put(("ok", done))
    except BaseException:  # noqa: BLE001 - reported to the parent
        out.put(("error", traceback.format_exc()))


def hammer(url: str) -> dict[str, int]:
    ResultsStore(url).engine.dispose()   # migrate once in the parent, then let the workers fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    deadline = time.time() + SECONDS
    workers = [context.Process(target=_worker, args=(url, i, deadline, queue)) for i in range(WORKERS)]
    for w in workers:
        w.start()
    answers = [queue.get(timeout=SECONDS + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    errors = [a[1] for a in answers if a[0] == "error"]
    assert not errors, errors[0]
    store = ResultsStore(url)
    states = store.alert_states(CHECKS)
    with store.engine.connect() as conn:
        alerts = conn.execute(sa.select(alert_outbox.c.check_name).where(alert_outbox.c.kind == "alert")).scalars().all()
        stored = conn.execute(sa.text("SELECT count(*) FROM check_results")).scalar()
    assessments = sum(a[1] for a in answers)
    return {"assessments": assessments, "stored": stored, "alerts": len(alerts),
            "alert_checks": len(set(alerts)),
            "lost": sum(assessments - states[c]["consecutive_failures"] for c in CHECKS)}


SHARED = [f"shared-{i}" for i in range(8)]


def _shuffled_worker(url: str, worker: int, deadline: float, out: "multiprocessing.Queue[tuple]") -> None:
    """Assess random subsets of SHARED in random orders; count what committed and what raised."""
    try:
        config = MaintenanceConfig.model_validate(CONFIG)
        store = ResultsStore(url)
        rand = random.Random(worker)
        committed: Counter[str] = Counter()
        errors: list[str] = []
        done = 0
        while time.time() < deadline:
            checks = rand.sample(SHARED, rand.randint(3, len(SHARED)))   # sample() is in random order
            results = [CheckResult(check=c, status="fail", summary="down") for c in checks]
            try:
                assess(store, config, results, dag_id="uptime_monitor", run_id=f"w{worker}-{done}",
                       task_id=f"task_{worker}", failure_threshold=None)
            except Exception as exc:  # noqa: BLE001 - counted: the test's figure
                cause = getattr(exc, "orig", None) or exc   # the driver's error under SQLAlchemy's
                errors.append(f"{type(cause).__name__}: {str(cause).splitlines()[0][:200]}")
            else:
                committed.update(checks)
                committed["(assessments)"] += 1
            done += 1
        out.put(("ok", committed, errors))
    except BaseException:  # noqa: BLE001 - reported to the parent
        out.put(("error", traceback.format_exc(), []))


def hammer_shuffled(url: str) -> dict[str, Any]:
    ResultsStore(url).engine.dispose()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    deadline = time.time() + SECONDS
    workers = [context.Process(target=_shuffled_worker, args=(url, i, deadline, queue)) for i in range(WORKERS)]
    for w in workers:
        w.start()
    answers = [queue.get(timeout=SECONDS + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    crashed = [a[1] for a in answers if a[0] == "error"]
    assert not crashed, crashed[0]
    expected: Counter[str] = sum((a[1] for a in answers), Counter())
    assessments = expected.pop("(assessments)", 0)
    errors = [e for a in answers for e in a[2]]
    store = ResultsStore(url)
    states = store.alert_states(SHARED)
    latest = store.current_states(SHARED)
    with store.engine.connect() as conn:
        stored = Counter(dict(conn.execute(sa.text(
            "SELECT check_name, count(*) FROM check_results GROUP BY check_name")).all()))
        alerts = conn.execute(sa.select(alert_outbox.c.check_name).where(alert_outbox.c.kind == "alert")).scalars().all()
    return {"successes": assessments, "exceptions": len(errors), "errors": errors,
            "lost": sum(expected[c] - (states[c]["consecutive_failures"] if c in states else 0) for c in SHARED),
            "stored": stored, "expected": expected, "alerts": Counter(alerts),
            "latest": sorted(latest)}


def check_shuffled(figures: dict[str, Any], name: str) -> None:
    kinds = Counter(e.split(":")[0] for e in figures["errors"])
    report(f"concurrency, shuffled order ({name}, {WORKERS} processes, {SECONDS:g} s): "
           f"{figures['successes']} assessments committed, {figures['exceptions']} exceptions "
           f"{dict(kinds) or ''}, {figures['lost']} failure-count updates lost")
    assert figures["exceptions"] == 0, figures["errors"][:3]
    assert figures["successes"] >= WORKERS                            # every worker got through
    assert figures["lost"] == 0                                       # every failure counted
    assert figures["stored"] == figures["expected"]                   # every committed result kept, no other
    assert figures["alerts"] == Counter(SHARED)                       # one alert per check
    assert figures["latest"] == sorted(SHARED)


def check(figures: dict[str, int], name: str) -> None:
    report(f"concurrency ({name}, {WORKERS} processes, {SECONDS:g} s): {figures['assessments']} assessments of "
           f"{len(CHECKS)} checks, {figures['lost']} failure-count updates lost, {figures['alerts']} alerts")
    assert figures["assessments"] >= WORKERS                          # every worker got through
    assert figures["stored"] == figures["assessments"] * len(CHECKS)  # every result kept
    assert figures["lost"] == 0                                       # every failure counted
    assert figures["alerts"] == len(CHECKS) and figures["alert_checks"] == len(CHECKS)   # one per check


def test_eight_workers_on_sqlite(tmp_path):
    check(hammer(f"sqlite:///{tmp_path / 'shared.db'}"), "SQLite")


def test_eight_workers_on_postgres(postgres_url):
    check(hammer(postgres_url), "Postgres")


def test_eight_workers_in_shuffled_order_on_sqlite(tmp_path):
    check_shuffled(hammer_shuffled(f"sqlite:///{tmp_path / 'shuffled.db'}"), "SQLite")


def test_eight_workers_in_shuffled_order_on_postgres(postgres_url):
    check_shuffled(hammer_shuffled(postgres_url), "Postgres")


# -- senders claim the outbox while assessments cancel alerts (issue #18, item 12) --------------
# An assessment cancels the alerts of checks that recovered before delivery: it locks outbox rows.
# A sender's claim locked every pending row in scan order and waited on the cancelled ones: a
# cycle with an assessment cancelling two alerts (before: 6 DeadlockDetected in 8 s on Postgres).

def _recovering_worker(url: str, worker: int, deadline: float, out: "multiprocessing.Queue[tuple]") -> None:
    try:
        config = MaintenanceConfig.model_validate({**CONFIG, "alerting": {"failure_threshold": 1,
                                                                          "renotify_after": "1000d"}})
        store = ResultsStore(url)
        rand = random.Random(worker)
        errors, done = [], 0
        while time.time() < deadline:
            status = "fail" if done % 2 == 0 else "ok"    # alerts enqueued, then cancelled
            results = [CheckResult(check=c, status=status, summary=status)
                       for c in rand.sample(SHARED, len(SHARED))]   # every check, shuffled
            try:
                assess(store, config, results, dag_id="uptime_monitor", run_id=f"w{worker}-{done}",
                       task_id=f"task_{worker}")
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(type(getattr(exc, "orig", None) or exc).__name__)
            done += 1
        out.put(("assess", done, errors))
    except BaseException:  # noqa: BLE001
        out.put(("error", traceback.format_exc(), []))


def _claiming_worker(url: str, worker: int, deadline: float, out: "multiprocessing.Queue[tuple]") -> None:
    try:
        store = ResultsStore(url)
        errors, done = [], 0
        while time.time() < deadline:
            try:
                token, _rows = store.claim("now")
                store.settle(token, delivered=False, error="Slack is down (test)")
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(type(getattr(exc, "orig", None) or exc).__name__)
            done += 1
        out.put(("claim", done, errors))
    except BaseException:  # noqa: BLE001
        out.put(("error", traceback.format_exc(), []))


CLAIM_SECONDS = 2 * SECONDS   # the cycle needs an unlucky interleaving: give it time


def claims_and_cancels(url: str, name: str) -> None:
    ResultsStore(url).engine.dispose()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    deadline = time.time() + CLAIM_SECONDS
    workers = [context.Process(target=_recovering_worker if i < 4 else _claiming_worker, args=(url, i, deadline, queue))
               for i in range(WORKERS)]
    for w in workers:
        w.start()
    answers = [queue.get(timeout=SECONDS + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    crashed = [a[1] for a in answers if a[0] == "error"]
    assert not crashed, crashed[0]
    errors = Counter(e for a in answers for e in a[2])
    done = Counter()
    for kind, count, _ in answers:
        done[kind] += count
    with ResultsStore(url).engine.connect() as conn:
        cancelled = conn.execute(sa.select(sa.func.count()).where(alert_outbox.c.cancelled_at.is_not(None))).scalar()
    report(f"claims while assessments cancel ({name}, 4 assessing + 4 claiming processes, {CLAIM_SECONDS:g} s): "
           f"{done['assess']} assessments, {done['claim']} claims, {cancelled} alerts cancelled, "
           f"{sum(errors.values())} exceptions {dict(errors) or ''}")
    assert not errors, errors
    assert done["assess"] >= 4 and done["claim"] >= 1 and cancelled > 0   # the race was run (SQLite starves senders)


def test_claims_while_assessments_cancel_on_sqlite(tmp_path):
    claims_and_cancels(f"sqlite:///{tmp_path / 'claims.db'}", "SQLite")


def test_claims_while_assessments_cancel_on_postgres(postgres_url):
    claims_and_cancels(postgres_url, "Postgres")


def test_a_claim_waits_on_no_alert_an_assessment_cancels(postgres_url):
    """The cycle, step by step: an assessment has cancelled one alert and is about to cancel
    another (two checks recovered) while a sender claims. Before, the claim locked the second
    and waited on the first: DeadlockDetected after a second."""
    store = ResultsStore(postgres_url)
    with store.engine.begin() as conn:
        first = store.enqueue(conn, kind="alert", payload={"kind": "alert", "check": "a"}, check="a")
        second = store.enqueue(conn, kind="alert", payload={"kind": "alert", "check": "b"}, check="b")
    claimed: dict[str, Any] = {}

    def send() -> None:
        try:
            claimed["ids"] = [row["id"] for row in store.claim("now")[1]]
        except Exception as exc:  # noqa: BLE001 - the test's answer
            claimed["error"] = exc

    with store.transaction() as conn:   # the assessment
        assert store.cancel(conn, second)
        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.time() + 30
        while sender.is_alive() and time.time() < deadline:   # finished, or waiting on our lock
            with store.engine.connect() as watch:
                if watch.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database()")).scalar():
                    break
            time.sleep(0.05)
        cancelled_first = store.cancel(conn, first)
    sender.join(timeout=30)
    assert "error" not in claimed, claimed["error"]
    assert claimed["ids"] == [first] and not cancelled_first   # the sender has it: not cancelled under it
    states = {row["id"]: row for row in store.outbox()}
    assert states[second]["cancelled_at"] is not None and states[second]["claim_token"] is None
