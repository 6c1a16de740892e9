"""End to end on the production topology (issue #5): CeleryExecutor, Postgres, Redis, real processes.

The tests share one started topology (conftest.py) and run in file order, each leaving
Slack up. Each counts only the Slack messages that arrived during it, and concludes that
nothing more is coming from the results store (every alert delivered or cancelled), not from
a pause. Everything goes through the REST API /api/v2 and the real outside
interfaces: the site's HTTP endpoints, the Slack webhook, the heartbeat endpoint.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from e2e.topology import wait_for
from figures import report

pytestmark = pytest.mark.e2e

# The 5-minute run's path alone: these tests steer single answers of the site (a slow answer
# meant for the uptime task) that a watcher sweeping beside them could take first. The watcher
# has its own topology: test_watcher_topology.py.
CONFIG_EXTRA = "uptime: {watch_interval: 0}\n"

UPTIME, DAILY, CLEANUP = "uptime_monitor", "maintenance_daily", "airflow_db_cleanup"


def results(topology, run_id: str) -> dict[str, list[str]]:
    """check name -> statuses, in order, of one run in the results store (the e2e Postgres DB)."""
    engine = sa.create_engine(topology.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT check_name, status FROM check_results WHERE run_id = :run ORDER BY id"), {"run": run_id}).all()
    finally:
        engine.dispose()
    by_check: dict[str, list[str]] = {}
    for name, status in rows:
        by_check.setdefault(name, []).append(status)
    return by_check


def query(topology, sql: str) -> list[tuple]:
    engine = sa.create_engine(topology.db_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql)).all()]
    finally:
        engine.dispose()


def open_incidents(topology) -> set[str]:
    """Checks whose incident is open (alerted, not yet recovered)."""
    return {name for (name,) in query(topology, "SELECT check_name FROM alert_state WHERE alerting")}


def wait_until_all_delivered(topology, timeout: float = 60) -> None:
    """Every Slack alert in the outbox delivered or cancelled: nothing more is on its way.

    Senders claim outbox rows and mark them delivered once Slack took them; a delivered row is
    never claimed again. (The digest channel waits for maintenance_daily: not counted here.)
    """
    pending = ("SELECT count(*) FROM alert_outbox WHERE channel = 'now' "
               "AND delivered_at IS NULL AND cancelled_at IS NULL")
    wait_for("every alert delivered or cancelled", lambda: query(topology, pending) == [(0,)], timeout)


def ping_paths(pings) -> list[str]:
    return [r.path.removeprefix("/ping/e2e-key") for r in pings.requests]


def wait_for_pings(pings, expected: list[str], timeout: float = 60) -> None:
    wait_for(f"heartbeat pings {expected}", lambda: all(p in ping_paths(pings) for p in expected), timeout)


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def test_scheduled_dags_run_on_celery(topology, site, slack, pings):
    api = topology.api
    before = len(slack.messages)
    site.set(home="ok", api="ok")
    runs = {dag_id: api.trigger(dag_id) for dag_id in (UPTIME, DAILY, CLEANUP)}
    for dag_id, run_id in runs.items():
        assert api.wait_for_run(dag_id, run_id)["state"] == "success", dag_id

    uptime = api.task_instances(UPTIME, runs[UPTIME])
    assert (uptime["check_endpoints"]["state"], uptime["check_endpoints"]["try_number"]) == ("success", 1)
    assert uptime["cross_check_external_monitors"]["state"] == "skipped"
    daily = api.task_instances(DAILY, runs[DAILY])
    assert daily["review_critical_alerts"]["state"] == "success"
    assert daily["send_daily_digest"]["state"] == "success"
    cleanup = api.task_instances(CLEANUP, runs[CLEANUP])
    assert {t: ti["state"] for t, ti in cleanup.items()} == {
        "clean_airflow_metadata": "success", "prune_results_store": "success"}

    assert results(topology, runs[UPTIME]) == {
        "home": ["ok"], "api-health": ["ok"], "external.monitors": ["skipped"], "config": ["ok"]}
    assert results(topology, runs[DAILY])["alerts.open"] == ["ok"]
    assert results(topology, runs[DAILY])["alerts.dead_letters"] == ["ok"]

    # Self-watch: start and success pings of both DAGs (success from the dag-processor).
    wait_for_pings(pings, ["/uptime/start", "/uptime", "/daily/start", "/daily"])
    # maintenance_daily's deadline is 5 s after queueing (config): missed, so Slack hears of it.
    wait_for("the deadline alert", lambda: slack.count("RUN LATE", since=before) >= 1, 60)
    wait_until_all_delivered(topology)
    late = [text for text in slack.texts(since=before) if "RUN LATE" in text]
    assert len(late) == 1 and late[0].count("RUN LATE") == 1 and f"{DAILY}.deadline" in late[0], late
    assert slack.count("FAILING", since=before) == slack.count("CRASHED", since=before) == 0, slack.texts(before)


def test_failing_endpoint_alerts_once_and_fast(topology, site, slack, pings):
    api = topology.api
    site.set(home="ok", api="fail")
    before = len(slack.messages)
    run_id = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, run_id)["state"] == "failed"
    ti = api.task_instances(UPTIME, run_id)["check_endpoints"]
    assert (ti["state"], ti["try_number"]) == ("failed", 1), "a failing check pages from its run, not retried"
    assert results(topology, run_id)["api-health"] == ["fail"]

    wait_for("the Slack alert", lambda: len(slack.messages) > before, 30)
    wait_until_all_delivered(topology)      # then anything doubled would have arrived
    new = slack.texts(since=before)
    assert len(new) == 1, new
    assert "FAILING api-health" in new[0] and "http_5xx" in new[0] and "home" not in new[0]
    assert "XXXXSECRETXXXX" not in str(slack.messages)

    failures = site.failures("/api/health")
    arrived = slack.arrived[before]
    latency = arrived - failures[-1]
    report(f"[e2e] alert latency: {latency:.2f}s from the last failing answer to the Slack POST; "
          f"(the task's end_date is {ts(ti['end_date']) - arrived:+.2f}s from the POST); "
          f"{arrived - failures[0]:.1f}s from the first failure (one try: delivered by the task itself)")
    assert 0 < latency < 30
    wait_for_pings(pings, ["/uptime/fail"])


def test_slack_down_alerts_arrive_once_it_is_back(topology, site, slack):
    api = topology.api
    before = len(slack.messages)
    already_open = open_incidents(topology)  # api-health, if the test before left it failing
    slack.down = True
    site.set(home="fail", api="fail")
    failing = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, failing)["state"] == "failed"
    wait_for("the task and its failure callback to try Slack", lambda: slack.refused >= 3, 30)
    assert len(slack.messages) == before

    # Slack is back while the site still fails: the next run delivers the held alert, once.
    slack.down = False
    still_failing = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, still_failing)["state"] == "failed"
    wait_for("the held alert", lambda: "FAILING home" in "".join(slack.texts(since=before)), 30)
    wait_until_all_delivered(topology)
    # The site recovers: one recovery each.
    site.set(home="ok", api="ok")
    healthy = api.trigger(UPTIME)
    assert api.wait_for_run(UPTIME, healthy)["state"] == "success"
    wait_for("the recoveries", lambda: slack.count("RECOVERED", since=before) >= 2, 30)
    wait_until_all_delivered(topology)
    new = "\n".join(slack.texts(since=before))
    for check in ("home", "api-health"):
        # an incident already open when the test began was alerted then: not again
        assert new.count(f"FAILING {check}") == (0 if check in already_open else 1), new
        assert new.count(f"RECOVERED {check}") == 1, new


def test_worker_killed_mid_task_is_retried_on_a_new_worker(topology, site, slack):
    api = topology.api
    before = len(slack.messages)
    site.set(home="ok", api=60)             # the first request hangs: the task is mid-sweep
    run_id = api.trigger(UPTIME)
    assert site.slow_request.wait(120), "the uptime task never reached the site"
    topology.kill("worker")
    topology.start("worker")
    run = api.wait_for_run(UPTIME, run_id, timeout=240)
    ti = api.task_instances(UPTIME, run_id)["check_endpoints"]
    assert run["state"] == "success"
    assert (ti["state"], ti["try_number"]) == ("success", 2), "the killed try was retried once"
    assert results(topology, run_id)["api-health"] == ["ok"]
    wait_until_all_delivered(topology)
    assert len(slack.messages) - before <= 1, slack.texts(since=before)
    assert slack.count("FAILING", since=before) == slack.count("CRASHED", since=before) == 0, \
        "no alert for a retried crash"


def test_scheduler_crash_and_restart_during_a_run(topology, site):
    api = topology.api
    site.set(home="ok", api=15)
    run_id = api.trigger(UPTIME)
    assert site.slow_request.wait(120), "the uptime task never reached the site"
    topology.kill("scheduler")              # a crash (OOM kill, node loss), not a clean stop
    topology.start("scheduler")
    assert api.wait_for_run(UPTIME, run_id, timeout=180)["state"] == "success"
    ti = api.task_instances(UPTIME, run_id)["check_endpoints"]
    assert (ti["state"], ti["try_number"]) == ("success", 1), "the running task was not disturbed"
