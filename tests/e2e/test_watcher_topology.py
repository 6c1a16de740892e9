"""The uptime watcher (issue 16) on the production topology: its trigger in the Celery
topology's triggerer, its events running uptime_monitor on a Celery worker, Postgres, Redis.

Its own topology (conftest.py): the watcher sweeps every 10 s (the config's floor); the e2e
config pages on the first failing sweep and recovers on the first good one. The scheduler
creates runs on its own here (asset-triggered runs need use_job_schedule, so the 5-minute cron
runs too: it shares the alert state, so the counts below hold whichever path judged first).
A killed triggerer's trigger goes to the restarted one once the dead one's heartbeat is 10 s
old (Airflow's default: 30 s).
The tests run in file order and count only the Slack messages that arrived during them.
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


def test_outage_pages_once_across_a_triggerer_kill_and_recovers_once(topology, site, slack):
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

    # A crash mid-outage: the trigger is restarted by the new triggerer, finds the open alert in
    # the results store and its last sweep in the asset state store, and keeps quiet.
    topology.kill("triggerer")
    killed = time.time()
    topology.start("triggerer")
    wait_for("two watcher sweeps of the failing endpoint after the restart",
             lambda: len([t for t in site.failures("/api/health") if t > killed]) >= 2, 120, interval=1)
    settle(topology)
    assert slack.count("FAILING", since=before) == 1, slack.texts(before)
    assert open_incidents(topology) == {"api-health"}

    site.set(api="ok")
    wait_for("RECOVERED api-health", lambda: slack.count("RECOVERED api-health", since=before) >= 1, 120)
    settle(topology)
    new = "\n".join(slack.texts(since=before))
    assert new.count("FAILING api-health") == 1 and new.count("RECOVERED api-health") == 1, new
    assert "FAILING home" not in new and "STILL FAILING" not in new, new
    assert open_incidents(topology) == set()
    # At most one asset event per change (the failure, the recovery; fewer if a 5-minute run saw
    # one first): none per failing sweep, none replayed after the restart.
    assert asset_events(topology) - events_before <= 2
    runs = [r for r in api.call("GET", f"/dags/{UPTIME}/dagRuns", params={"limit": 100})["dag_runs"]
            if r["run_type"] == "asset_triggered"]
    assert runs and all(r["state"] in ("success", "failed") for r in runs), runs


def test_stopped_watcher_is_paged_by_the_five_minute_run(topology, site, slack):
    """The triggerer is down: the 5-minute run's uptime.watcher check pages once, and recovers.

    Rather than wait up to 5 minutes for the cron, the run is triggered through the REST API: the
    same full sweep as a scheduled run (only an asset-triggered run is different). A cron run
    that comes first pages instead; either way the page is one."""
    api = topology.api
    site.set(home="ok", api="ok")
    settle(topology)
    before = len(slack.messages)
    topology.kill("triggerer")
    stopped = time.time()
    time.sleep(3 * WATCH_INTERVAL_S + 2)    # the newest sample is now older than 3 intervals
    run_id = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, run_id)["state"] == "failed"
    wait_for("FAILING uptime.watcher", lambda: slack.count("FAILING uptime.watcher", since=before) >= 1, 60)
    report(f"[e2e] watcher stopped: paged {time.time() - stopped:.1f}s after the triggerer died")
    settle(topology)
    paged = [text for text in slack.texts(since=before) if "uptime.watcher" in text]
    assert len(paged) == 1 and "triggerer is down" in paged[0], paged

    topology.start("triggerer")
    restarted = time.time()
    wait_for("the watcher sweeping again",
             lambda: any(t > restarted for t, path, _ in site.answers if path == "/api/health"), 120, interval=1)
    time.sleep(1)                           # its results stored (one transaction after the answers)
    run_id = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, run_id)["state"] == "success"
    wait_for("RECOVERED uptime.watcher", lambda: slack.count("RECOVERED uptime.watcher", since=before) >= 1, 60)
    settle(topology)
    new = "\n".join(slack.texts(since=before))
    assert new.count("FAILING uptime.watcher") == 1 and new.count("RECOVERED uptime.watcher") == 1, new
