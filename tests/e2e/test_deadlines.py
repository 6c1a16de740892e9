"""Deadline alerts under the real scheduler and triggerer (issue 17 item 1).

Airflow 3.3.2 prunes a run's deadlines only when the run succeeds, so the scheduler also
"misses" the deadline of a run that failed long before it and queues our callback. A run that
finished before its deadline, whatever its state, is not late; a run still going is.
uptime_monitor's deadline here is LATE_AFTER after queueing: about twice what a failing run
takes on a loaded machine; a run whose worker is down stays unfinished past it.
"""

from __future__ import annotations

import pytest

from e2e.test_celery_topology import UPTIME, query, ts, wait_until_all_delivered
from e2e.topology import wait_for

pytestmark = pytest.mark.e2e

LATE_AFTER = "{uptime_monitor: 60s}"    # read by conftest's topology fixture


def deadline_callback_done(topology, run_id: str) -> bool:
    """The run's deadline was missed by the scheduler and its callback ran in the triggerer."""
    rows = query(topology, f"""
        SELECT d.missed, c.state FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id
        JOIN callback c ON c.id = d.callback_id
        WHERE r.dag_id = '{UPTIME}' AND r.run_id = '{run_id}'""")
    return bool(rows) and all(missed and state in ("success", "failed") for missed, state in rows)


def test_a_failed_run_that_ended_before_its_deadline_is_not_late(topology, site, slack):
    api = topology.api
    before = len(slack.messages)
    site.set(home="ok", api="fail")
    run_id = api.trigger(UPTIME)
    run = api.wait_for_run(UPTIME, run_id)
    assert run["state"] == "failed"
    took = ts(run["end_date"]) - ts(run["queued_at"])
    assert took < 60, f"the failing run took {took:.0f}s, past its 60s deadline: too slow a machine for this test"
    # The deadline passes 60 s after queueing; the scheduler then hands it to the triggerer,
    # which runs our callback (without the fix it enqueues and posts RUN LATE there).
    wait_for("the failed run's deadline to be missed and its callback run",
             lambda: deadline_callback_done(topology, run_id), 180, interval=1)
    wait_until_all_delivered(topology)
    texts = slack.texts(since=before)
    assert slack.count("FAILING api-health", since=before) == 1, texts
    assert slack.count("RUN LATE", since=before) == 0, texts


def test_a_run_still_going_at_its_deadline_is_late(topology, site, slack):
    api = topology.api
    before = len(slack.messages)
    site.set(home="ok", api="ok")
    topology.stop("worker")                 # nothing runs the task: the run cannot finish in time
    try:
        run_id = api.trigger(UPTIME)
        wait_for("the late run's RUN LATE", lambda: slack.count("RUN LATE", since=before) >= 1, 180)
    finally:
        topology.start("worker")
    assert api.wait_for_run(UPTIME, run_id, timeout=240)["state"] == "success"
    wait_until_all_delivered(topology)
    late = [text for text in slack.texts(since=before) if "RUN LATE" in text]
    assert len(late) == 1 and late[0].count("RUN LATE") == 1 and f"{UPTIME}.deadline" in late[0], late
    assert "1m after it was queued" in late[0], late
