"""What an alert says (issue 17 item 6): how long the check has been failing, measured from its
first failing result to the second, and a provider's contact only for that provider's endpoint."""

from __future__ import annotations

from datetime import timedelta

from maintenance.alerting import assess, deliver
from maintenance.checks.uptime import sweep
from maintenance.config import MaintenanceConfig
from maintenance.results import ResultsStore
from servers import LocalServer

CONTACTS = {"vercel": {"name": "Vercel Support", "how": "https://vercel.com/help"},
            "atlas": {"name": "MongoDB Atlas Support", "how": "https://support.mongodb.com"},
            "stripe": {"name": "Stripe Support", "how": "https://support.stripe.com"}}


def config_for(url: str) -> MaintenanceConfig:
    def endpoint(name: str, **extra):
        return {"name": name, "url": f"{url}/{name}", "conditions": ["[STATUS] == 200"], "critical": True, **extra}

    return MaintenanceConfig.model_validate({
        "site": {"name": "t", "url": url}, "contacts": CONTACTS,
        "alerting": {"failure_threshold": 2, "success_threshold": 1},
        "endpoints": [endpoint("home", group="homepage"), endpoint("db-health", group="database"),
                      endpoint("checkout", group="payments", provider="stripe")]})


class Slack:
    def __init__(self):
        self.posts: list[str] = []

    def __call__(self, text, blocks):
        self.posts.append(text + "\n" + "\n".join(b["text"]["text"] for b in blocks if "text" in b))


def test_failing_for_counts_seconds_from_the_first_failing_result_and_contacts_are_the_endpoints(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    slack = Slack()
    with LocalServer(lambda r: (500, {"Content-Type": "text/plain"}, "down")) as site:
        config = config_for(site.url)
        first = sweep(config.endpoints)
        second = sweep(config.endpoints)
    first_failure = min(r.time for r in first)
    for run, results in enumerate((first, second)):
        assess(store, config, results, dag_id="uptime_monitor", run_id=f"r{run}", task_id="check_endpoints",
               now=results[0].time)
    deliver(store, config, sender=slack, now=first_failure + timedelta(minutes=2, seconds=58, milliseconds=100))
    (message,) = slack.posts
    assert message.count("failing for 2m 58s (2 failed checks)") == 6, message   # text and blocks
    home = next(line for line in message.splitlines() if line.startswith("FAILING home"))
    assert "call" not in home and "Support" not in message.split("*home*")[1].split("*db-health*")[0], message
    assert "call MongoDB Atlas Support" in message.split("*db-health*")[1].split("*checkout*")[0], message
    assert "call Stripe Support" in message.split("*checkout*")[1], message
    assert "Vercel" not in message, message


def test_a_recovery_delivered_late_says_how_long_the_check_really_failed(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    slack = Slack()
    with LocalServer(lambda r: (500, {"Content-Type": "text/plain"}, "down")) as site:
        config = config_for(site.url)
        failing = [sweep(config.endpoints[:1]) for _ in range(2)]
    with LocalServer(lambda r: (200, {"Content-Type": "text/plain"}, "ok")) as site:
        healthy = sweep(config_for(site.url).endpoints[:1])
    for run, results in enumerate(failing + [healthy]):
        assess(store, config, results, dag_id="uptime_monitor", run_id=f"r{run}", task_id="check_endpoints",
               now=results[0].time)
        if run == 1:
            deliver(store, config, sender=slack, now=results[0].time)
    lasted = healthy[0].time - failing[0][0].time
    deliver(store, config, sender=slack, now=healthy[0].time + timedelta(hours=3))   # Slack was down for 3 h
    recovered = slack.posts[-1]
    assert lasted.total_seconds() < 30    # the three sweeps took seconds; the delivery came 3 h later
    assert "RECOVERED home" in recovered and f"was failing for {round(lasted.total_seconds())}s (2 failed checks)" \
        in recovered, (lasted, recovered)


def test_the_count_of_failures_is_of_checks_not_runs_when_the_watcher_saw_them(tmp_path):
    """First-hour run (benchmarks/first_hour.py): the watcher's sweeps count towards the alert
    (issue 16), so "failing for 35s (2 runs)" came before any uptime_monitor run had ended and
    "(22 runs)" after 4 failed runs: the number is of failed checks, whoever made them."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    slack = Slack()
    with LocalServer(lambda r: (500, {"Content-Type": "text/plain"}, "down")) as site:
        config = config_for(site.url)
        sweeps = [sweep(config.endpoints[:1]) for _ in range(3)]
    for n, results in enumerate(sweeps):
        run_id = "scheduled__2026-12-06T03:55:00+00:00" if n == 2 else f"watcher__20261206T0354{n}5"
        assess(store, config, results, dag_id="uptime_monitor", run_id=run_id, task_id="check_endpoints",
               now=results[0].time)
        if n == 1:     # the alert opens on the watcher's second failed sweep, before any run ended
            deliver(store, config, sender=slack, now=results[0].time)
    with LocalServer(lambda r: (200, {"Content-Type": "text/plain"}, "ok")) as site:
        healthy = sweep(config_for(site.url).endpoints[:1])
    assess(store, config, healthy, dag_id="uptime_monitor", run_id="watcher__20261206T040416",
           task_id="check_endpoints", now=healthy[0].time)
    deliver(store, config, sender=slack, now=healthy[0].time)
    failing, recovered = slack.posts
    assert "FAILING home" in failing and "(2 failed checks)" in failing, failing
    assert "RECOVERED home" in recovered and "(3 failed checks)" in recovered, recovered
    assert not any(word in post for post in slack.posts for word in (" run)", " runs)")), slack.posts
