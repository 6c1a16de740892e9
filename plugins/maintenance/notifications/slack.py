"""The one Slack notifier: every sender (task failure, task success, deadline, digest,
reports) hands its context to MaintenanceNotifier, which delivers the outbox through
alerting.deliver() and hooks/slack.py (SlackWebhookHook on connection `slack_alerts`).

It is an Airflow BaseNotifier, so it is also the `on_failure_callback` of every task
(`task_failure_notifier`): a task that crashed (anything but ChecksFailed) is reported as
such, even when the results store itself is down.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)


class MaintenanceNotifier(BaseNotifier):
    """Deliver the pending messages of `channel` (now, digest, report) to Slack.

    task_scoped: alerts that another task instance enqueued moments ago are left to that
    task (it delivers them itself); recoveries, crashes and earlier leftovers are taken.
    report_crash: the context's exception, unless it is ChecksFailed, is a TASK CRASHED message.
    """

    def __init__(self, channel: str = "now", *, task_scoped: bool = True, report_crash: bool = False) -> None:
        super().__init__()
        self.channel, self.task_scoped, self.report_crash = channel, task_scoped, report_crash

    def notify(self, context: Any) -> None:
        self.deliver(context)

    def deliver(self, context: Any) -> int:
        """The number of messages delivered; never raises for Slack's or the store's sake."""
        from maintenance.alerting import ChecksFailed, crash_payload, deliver, enqueue_crash, send_message, task_key
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store

        try:
            config = get_config()
        except Exception:  # noqa: BLE001 - a callback that raises only hides the original failure
            log.exception("the Slack message could not be prepared: the config does not load")
            return 0
        error = context.get("exception") if self.report_crash else None
        crashed = self.report_crash and not isinstance(error, ChecksFailed)
        try:
            store = results_store(config.results.conn_id)
            if crashed:
                enqueue_crash(store, context, error)
            return deliver(store, config, channel=self.channel,
                           task=task_key(context) if self.task_scoped else None)
        except Exception as store_error:  # noqa: BLE001
            if not crashed:
                log.exception("results store unavailable: pending Slack messages stay where they are")
                return 0
            # The results store itself is down: say so directly rather than lose the alert.
            log.exception("results store unavailable; alerting without it")
            note = f" (results store unavailable: {type(store_error).__name__})"
            outcome = send_message(config, [{"payload": crash_payload(context, error, note)}])
            return 1 if outcome.delivered else 0


def task_failure_notifier() -> MaintenanceNotifier:
    """The on_failure_callback of every task (operators/defaults.py)."""
    return MaintenanceNotifier(report_crash=True)
