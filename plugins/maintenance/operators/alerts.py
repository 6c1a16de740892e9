"""Operators over the alert state itself: the review of open alerts and the daily digest."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from airflow.sdk import BaseOperator

from maintenance.alerting import deliver
from maintenance.config import MaintenanceConfig, get_config
from maintenance.hooks.results_db import results_store
from maintenance.operators.base import MaintenanceCheckOperator
from maintenance.results import CheckResult, alert_state


class ReviewOpenAlertsOperator(MaintenanceCheckOperator):
    """'Review critical alerts': every incident still open, with how long it has been open."""

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        store = results_store(config.results.conn_id)
        with store.engine.connect() as conn:
            open_alerts = [dict(r._mapping) for r in conn.execute(
                sa.select(alert_state).where(alert_state.c.alerting.is_(True)).order_by(alert_state.c.check_name))]
        names = [a["check_name"] for a in open_alerts]
        return [CheckResult(
            check="alerts.open", group="alerts", status="warn" if open_alerts else "ok",
            summary=f"{len(open_alerts)} alert(s) still open: {', '.join(names)}" if open_alerts else "no open alerts",
            metrics={"open_alerts": len(open_alerts)}, evidence={"open": names}, runbook=context["dag"].dag_id,
        )]


class SendDigestOperator(BaseOperator):
    """Deliver the digest channel (non-critical alerts) as one Slack message."""

    def execute(self, context: Any) -> int:
        config = get_config()
        sent = deliver(results_store(config.results.conn_id), config, channel="digest")
        self.log.info("digest: %d item(s) delivered", sent)
        return sent
