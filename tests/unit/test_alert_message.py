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
    assert message.count("failing for 2m 58s (2 runs)") == 6, message   # text and blocks
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
    assert "RECOVERED home" in recovered and f"was failing for {round(lasted.total_seconds())}s (2 runs)" \
        in recovered, (lasted, recovered)
