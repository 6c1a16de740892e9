"""Delivery of the outbox to Slack: claim, send one grouped message, settle.

Nothing is lost: what Slack does not take stays in the outbox for the next delivery.
Nothing is doubled: claims stop two senders taking the same rows, and a send that may have
been received (Slack hung, closed without answering, or answered 200 without "ok") is sent
at most once more. Nothing storms: Retry-After closes a gate in the store that every sender
respects, for at most MAX_GATE, then Slack is probed again and the message that gets
through says how long it was gated; permanent refusals are not retried in a loop; a message
older than alerting.outbox_max_age is dead-lettered (kept, counted, reported by
maintenance_daily's review_critical_alerts).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from maintenance.alerting.message import build_message
from maintenance.config import MaintenanceConfig
from maintenance.hooks.http_policy import RetryPolicy
from maintenance.hooks.slack import Sender, SlackNotConfigured, SlackSendError
from maintenance.results import ResultsStore, utcnow

log = logging.getLogger(__name__)

SLACK_POLICY = RetryPolicy(timeout=10, attempts=3, backoff_base=1.0, backoff_max=8.0)
GATE = "slack"              # the delivery_gate row of the Slack webhook
MAX_INLINE_WAIT = 10.0      # a longer Retry-After ends this delivery; the next one waits for the gate
MAX_GATE = 3600.0           # a longer Retry-After closes the gate this long, then Slack is probed again
MAX_UNCERTAIN_SENDS = 2     # a message Slack may have received is sent at most twice in all


@dataclass
class Outcome:
    delivered: bool
    error: str | None = None
    uncertain: bool = False
    retry_after: float | None = None


def ui_base_url(config: MaintenanceConfig) -> str:
    if config.alerting.ui_base_url:
        return config.alerting.ui_base_url.rstrip("/")
    try:
        from airflow.configuration import conf
        return conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    except Exception:  # noqa: BLE001
        return "http://localhost:8080"


def send_message(config: MaintenanceConfig, rows: list[dict[str, Any]], *, sender: Sender | None = None,
                 sleep: Callable[[float], None] = time.sleep, now: datetime | None = None,
                 gated_for: float | None = None) -> Outcome:
    """Post one grouped message for these outbox rows, retrying what is transient."""
    text, blocks = build_message(rows, config, ui_base=ui_base_url(config), now=now, gated_for=gated_for)
    try:
        sender = sender or _default_sender(config)
    except SlackNotConfigured as exc:
        log.warning("Slack alert not sent (%s); the message was:\n%s", exc, text)
        return Outcome(True)   # logged is the delivery we can make
    error: SlackSendError | None = None
    for attempt in range(1, SLACK_POLICY.attempts + 1):
        try:
            sender(text, blocks)
            log.info("Slack alert delivered: %d item(s)", len(rows))
            return Outcome(True)
        except SlackSendError as exc:
            error = exc
            if exc.uncertain or not exc.retryable or attempt == SLACK_POLICY.attempts:
                break
            if exc.retry_after is not None and exc.retry_after > MAX_INLINE_WAIT:
                break   # the gate makes the next delivery wait
            wait = exc.retry_after if exc.retry_after is not None else SLACK_POLICY.delay(attempt)
            log.warning("%s (try %d of %d); retrying in %.1fs", exc, attempt, SLACK_POLICY.attempts, wait)
            sleep(wait)
    assert error is not None
    log.warning("Slack alert not delivered (%s):\n%s", error, text)
    retry_after = error.retry_after if error.retry_after and error.retry_after > MAX_INLINE_WAIT else None
    return Outcome(False, str(error), error.uncertain, retry_after)


def _default_sender(config: MaintenanceConfig) -> Sender:
    from maintenance.hooks.slack import slack_sender

    return slack_sender(config.alerting.slack_conn_id, config.alerting.slack_timeout.total_seconds())


def deliver(store: ResultsStore, config: MaintenanceConfig, *, channel: str = "now",
            task: tuple[str, str, str] | None = None, sender: Sender | None = None,
            sleep: Callable[[float], None] = time.sleep, now: datetime | None = None) -> int:
    """Send the undelivered messages of a channel as one grouped Slack message.

    Returns the number of messages delivered (0 when none was due, Slack asked us to wait, or
    refused them: refused ones stay in the outbox). Never raises for Slack's sake.
    """
    now = now or utcnow()
    dead = store.dead_letter(max_age=config.alerting.outbox_max_age, max_uncertain=MAX_UNCERTAIN_SENDS, now=now)
    if dead:
        log.error("%d undelivered Slack message(s) dead-lettered (older than %s, or sent %d times without a "
                  "clear answer); review_critical_alerts reports them", dead, config.alerting.outbox_max_age,
                  MAX_UNCERTAIN_SENDS)
    gate = store.gate(GATE)
    if gate is not None and gate["not_before"] > now:
        log.warning("Slack asked us to wait until %s (Retry-After): messages kept for then",
                    gate["not_before"].isoformat())
        return 0
    token, rows = store.claim(channel, task=task, now=now)
    if not rows:
        return 0
    gated_for = (now - gate["since"]).total_seconds() if gate is not None and gate["since"] else None
    outcome = send_message(config, rows, sender=sender, sleep=sleep, now=now, gated_for=gated_for)
    if outcome.retry_after is not None:
        # Never longer than MAX_GATE: a year-long Retry-After from a proxy must not silence Slack for a year.
        wait = min(outcome.retry_after, MAX_GATE)
        store.close_gate(GATE, now + timedelta(seconds=wait), outcome.error or "", now=now)
    elif outcome.delivered and gate is not None:
        store.open_gate(GATE)
    store.settle(token, delivered=outcome.delivered, error=outcome.error, now=now, uncertain=outcome.uncertain)
    if not outcome.delivered:
        log.warning("kept %d undelivered item(s) for the next message", len(rows))
        return 0
    return len(rows)
