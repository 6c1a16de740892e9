"""The uptime watcher (issue 16) on the production topology: its trigger in the Celery
topology's triggerer, its events running uptime_monitor on a Celery worker, Postgres, Redis.

Its own topology (conftest.py): the watcher sweeps every 10 s (the config's floor); the e2e
config pages on the first failing sweep and recovers on the first good one. The scheduler
creates runs on its own here (asset-triggered runs need use_job_schedule, so the 5-minute cron
runs too: it shares the alert state, so the counts below hold whichever path judged first).
A killed triggerer's trigger goes to the restarted one once the dead one's heartbeat is 10 s
old (Airflow's default: 30 s).
One test (one topology start, one triggerer restart): it counts only the Slack messages that
arrived during it.
"""

from __future__ import annotations

import time

import pytest

from e2e.test_celery_topology import UPTIME, open_incidents, query, wait_until_all_delivered
from e2e.topology import wait_for
from figures import report

pytestmark = pytest.mark.e2e

WATCH_INTERVAL_S = 10
CONFIG_EXTRA = f"uptime: {{watch_interval: {WATCH_INTERVAL_S}s}}\n"
EXTRA_ENV = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",     # else no asset-triggered run either
             "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10"}
UNPAUSE = (UPTIME,)

def watcher_sweeps(topology) -> set[str]:
    """Run ids of the watcher's stored sweeps (watcher__<start>)."""
    sql = "SELECT DISTINCT run_id FROM check_results WHERE left(run_id, 9) = 'watcher__'"
    return {run_id for (run_id,) in query(topology, sql)}


def asset_events(topology) -> int:
    return query(topology, "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                           "WHERE a.name = 'uptime_watcher'")[0][0]


def runs_in_progress(topology) -> int:
    return query(topology, f"SELECT count(*) FROM dag_run WHERE dag_id = '{UPTIME}' "
                           "AND state IN ('queued', 'running')")[0][0]


def settle(topology) -> None:
    """No uptime_monitor run queued or running and every Slack alert delivered: nothing on its way."""
    wait_for("uptime_monitor runs to end", lambda: runs_in_progress(topology) == 0, 120)
    wait_until_all_delivered(topology)


def test_watcher_pages_once_across_a_triggerer_kill_and_is_itself_watched(topology, site, slack):
    """An outage seen by the watcher: one FAILING; the triggerer killed mid-outage (SIGKILL) and
    down for 3 intervals, so the 5-minute run's uptime.watcher check pages that the watcher is
    stopped; the triggerer restarted: no second FAILING; the endpoint back: one RECOVERED; the
    next 5-minute run: uptime.watcher recovered.

    Rather than wait up to 5 minutes for the cron, "the 5-minute run" is triggered through the
    REST API: the same full sweep as a scheduled run (only an asset-triggered run differs). A
    cron run that comes first does the same, and the counts below still hold."""
    api = topology.api
    site.set(home="ok", api="ok")
    wait_for("the watcher's first sweep", lambda: watcher_sweeps(topology), 120, interval=1)
    settle(topology)
    before, events_before = len(slack.messages), asset_events(topology)

    site.set(api="fail")
    started = time.time()
    wait_for("FAILING api-health", lambda: slack.count("FAILING api-health", since=before) >= 1, 120)
    report(f"[e2e] watcher: FAILING in Slack {time.time() - started:.1f}s after the endpoint went down "
           f"(watch interval {WATCH_INTERVAL_S}s, paged on the first failing sweep)")
    settle(topology)
    assert open_incidents(topology) == {"api-health"}

    # A crash mid-outage. Once the newest sample is older than 3 intervals, the 5-minute run
    # pages that the watcher has stopped (and, sweeping api-health itself, does not page it again).
    topology.kill("triggerer")
    killed = time.time()
    time.sleep(3 * WATCH_INTERVAL_S + 2)
    run_id = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, run_id)["state"] == "failed"
    wait_for("FAILING uptime.watcher", lambda: slack.count("FAILING uptime.watcher", since=before) >= 1, 60)
    report(f"[e2e] watcher stopped: paged {time.time() - killed:.1f}s after the triggerer was killed")
    settle(topology)
    assert open_incidents(topology) == {"api-health", "uptime.watcher"}

    # Restarted: the trigger finds the open alert in the results store and its last sweep in the
    # asset state store, sweeps at once and keeps quiet.
    restarted = time.time()
    topology.start("triggerer")
    wait_for("two watcher sweeps of the failing endpoint after the restart",
             lambda: len([t for t in site.failures("/api/health") if t > restarted]) >= 2, 120, interval=1)
    settle(topology)
    assert open_incidents(topology) == {"api-health", "uptime.watcher"}

    site.set(api="ok")
    wait_for("RECOVERED api-health", lambda: slack.count("RECOVERED api-health", since=before) >= 1, 120)
    settle(topology)
    run_id = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, run_id)["state"] == "success"
    wait_for("RECOVERED uptime.watcher", lambda: slack.count("RECOVERED uptime.watcher", since=before) >= 1, 60)
    settle(topology)

    texts = slack.texts(since=before)
    new = "\n".join(texts)
    for check in ("api-health", "uptime.watcher"):
        assert new.count(f"FAILING {check}") == 1 and new.count(f"RECOVERED {check}") == 1, new
    assert "FAILING home" not in new and "STILL FAILING" not in new, new
    assert any("uptime.watcher" in t and "triggerer is down" in t for t in texts), texts
    assert open_incidents(topology) == set()
    # At most one asset event per change (the failure, the recovery; fewer if a 5-minute run saw
    # one first): none per failing sweep, none replayed after the restart.
    assert asset_events(topology) - events_before <= 2
    runs = [r for r in api.call("GET", f"/dags/{UPTIME}/dagRuns", params={"limit": 100})["dag_runs"]
            if r["run_type"] == "asset_triggered"]
    assert runs and all(r["state"] in ("success", "failed") for r in runs), runs
