"""Operators over the alert state itself: the review of open alerts and the daily digest."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from maintenance.notifications.slack import MaintenanceNotifier
from maintenance.operators.base import MaintenanceCheckOperator

if TYPE_CHECKING:
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class ReviewOpenAlertsOperator(MaintenanceCheckOperator):
    """'Review critical alerts': every incident still open, with how long it has been open."""

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.hooks.results_db import results_store
        from maintenance.results import CheckResult, utcnow

        store = results_store(config.results.conn_id)
        names = list(store.alert_states(alerting=True))
        runbook = context["dag"].dag_id
        return [CheckResult(
            check="alerts.open", group="alerts", status="warn" if names else "ok",
            summary=f"{len(names)} alert(s) still open: {', '.join(names)}" if names else "no open alerts",
            metrics={"open_alerts": len(names)}, evidence={"open": names}, runbook=runbook,
        ), dead_letter_check(store.dead_letters(since=utcnow() - DEAD_LETTER_LOOKBACK), runbook,
                             undelivered=store.undelivered())]


DEAD_LETTER_LOOKBACK = timedelta(days=7)


def dead_letter_check(dead: list[dict[str, Any]], runbook: str, undelivered: int = 0) -> CheckResult:
    """Slack messages given up on: a failure, so the task fails and the heartbeat's /fail ping
    shows a dead webhook somewhere other than Slack itself. `undelivered`: messages still
    waiting for Slack (not yet given up), so the summary never claims they were delivered."""
    from maintenance.results import CheckResult

    if not dead:
        summary = (f"no Slack message given up in the last 7 days; {undelivered} waiting to be sent" if undelivered
                   else "every Slack message of the last 7 days was delivered")
        return CheckResult(check="alerts.dead_letters", group="alerts", status="ok", summary=summary,
                           runbook=runbook, metrics={"dead_letters": 0, "undelivered": undelivered})
    errors = sorted({(row["last_error"] or "no answer")[:120] for row in dead})
    return CheckResult(
        check="alerts.dead_letters", group="alerts", status="fail", reason="slack_undeliverable", runbook=runbook,
        summary=f"{len(dead)} Slack message(s) could not be delivered and were given up (last error: {errors[-1]}); "
                "check the slack_alerts connection",
        metrics={"dead_letters": len(dead), "undelivered": undelivered},
        evidence={"dead_letters": [{"id": r["id"], "kind": r["kind"], "check": r["check_name"],
                                    "created_at": str(r["created_at"]), "error": r["last_error"]} for r in dead[:50]]},
    )


class SendDigestOperator(BaseOperator):
    """Deliver the digest channel (non-critical alerts) as one Slack message."""

    def execute(self, context: Any) -> int:
        sent = MaintenanceNotifier(channel="digest", task_scoped=False).deliver(context)
        self.log.info("digest: %d item(s) delivered", sent)
        return sent
