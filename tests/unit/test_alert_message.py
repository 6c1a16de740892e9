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
