"""The base of every check operator: run checks, store, assess alerts, fail when one pages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from maintenance.notifications.slack import MaintenanceNotifier

# Operator modules are imported by every DAG file parse: what they need to run is imported
# when they run (tests/dags/test_integrity.py keeps it so).
if TYPE_CHECKING:
    from datetime import datetime

    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult, ResultsStore


def connection_or_none(conn_id: str) -> Any:
    """The Airflow connection, or None when it is not configured (the check is then skipped)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


CONFIG_CHECK = "config"
# Checks that page on their first failed run, whatever failure_threshold says: an invalid config,
# and a watcher that fell silent (issue 16: it pages within 3 intervals plus one 5-minute run).
WATCHER_CHECK = "uptime.watcher"
IMMEDIATE_CHECKS = frozenset({CONFIG_CHECK, WATCHER_CHECK})


def config_check() -> CheckResult:
    """Whether the config file validates; while it does not, everything runs on the last valid one."""
    from maintenance.config import config_problem
    from maintenance.results import CheckResult

    problem = config_problem()
    if problem is None:
        return CheckResult(check=CONFIG_CHECK, group="config", status="ok", summary="the config file is valid",
                           runbook="uptime_monitor")
    return CheckResult(
        check=CONFIG_CHECK, group="config", status="fail", reason="config_invalid", runbook="uptime_monitor",
        summary="the config file is invalid; running on the last valid configuration until it is fixed: "
                + "; ".join(problem.splitlines()[:5]),
        evidence={"errors": problem.splitlines()[:20]})


def enqueue_report_once(store: ResultsStore, result: CheckResult, context: Any, channel: str) -> None:
    """Put `result` on `channel` as a report once per task of a run, whatever the retries."""
    from maintenance.alerting import enqueue_report

    ti = context["ti"]
    if not store.report_enqueued(result.check, channel=channel, dag_id=ti.dag_id, run_id=ti.run_id,
                                 task_id=ti.task_id):
        enqueue_report(store, result, context, channel=channel)


def skip_before_first_result(store: ResultsStore, start: datetime, what: str) -> None:
    """Skip a review or report of a period that began before the store's first result (the
    first start, a catch-up run): it would only announce missing data. One log line says so."""
    from airflow.sdk.exceptions import AirflowSkipException

    first = store.first_result_at()
    if first is None or first > start:
        since = f"the first stored result is from {first:%Y-%m-%d %H:%M} UTC" if first else "no result is stored yet"
        raise AirflowSkipException(f"{what} skipped: its period began {start:%Y-%m-%d %H:%M} UTC and {since}, "
                                   "so there is no complete record to review")

# A task log's level says what the result is: a warning is a WARNING line, a failure an ERROR line.
RESULT_LOG_LEVELS = {"warn": logging.WARNING, "fail": logging.ERROR}


def log_result(log: Any, result: CheckResult, suffix: str = "") -> None:
    log.log(RESULT_LOG_LEVELS.get(result.status, logging.INFO), "%-5s %s: %s%s", result.status.upper(), result.check,
            result.summary, suffix)


def mask_secrets(*secrets: str) -> None:
    """Register secrets with Airflow's masker, so the task log never shows them either."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret and len(secret) >= 3:
            mask_secret(secret)


class MaintenanceCheckOperator(BaseOperator):
    """Subclasses implement `run_checks(config, context)`; the rest is the one alert path."""

    ui_color = "#e8f4fd"
    # Checks that run every few minutes (uptime) alert after alerting.failure_threshold
    # consecutive failed runs, as in Gatus. Daily, weekly and monthly checks page on a failed
    # run: waiting for a second one would mean a day or a month of silence.
    uses_failure_threshold = False
    # True when run_checks returns every check the task owns, every time: an open alert of a
    # check that is no longer returned (removed from the config) is then resolved.
    reports_every_check = False
    # True on the task that tells Slack when the config file is invalid (uptime_monitor's sweep).
    reports_config = False

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        raise NotImplementedError

    def renotify(self, results: list[CheckResult]) -> dict[str, bool]:
        """Per check, whether its open incident is re-paged now; by default (empty) after
        alerting.renotify_after."""
        return {}

    def execute(self, context: Any) -> list[dict[str, Any]]:
        import sys

        from maintenance.config import get_config

        if "sentry_sdk" in sys.modules:   # [sentry] sentry_on: a failing check is not an orchestrator error
            from maintenance.sentry_filter import install

            install()
        config = get_config()
        results = self.run_checks(config, context)
        if self.reports_config:
            results.append(config_check())
        return self.conclude(context, config, results)

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        """Store, assess, deliver, page: the end of every check task (deferrable ones call it
        from their resume method)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from maintenance.alerting import ChecksFailed, assess
        from maintenance.hooks.results_db import results_store

        ti = context["ti"]
        store = results_store(config.results.conn_id)
        assessment = assess(store, config, results, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
                            try_number=ti.try_number, log_url=ti.log_url,
                            failure_threshold=None if self.uses_failure_threshold else 1,
                            complete=self.reports_every_check, immediate=IMMEDIATE_CHECKS,
                            renotify=self.renotify(results))
        if assessment.due:   # runbooks (issue 10): an incident in a group with a runbook starts it, once
            from maintenance.operators.runbook_start import start_runbooks

            start_runbooks(store, config, assessment, context)
        for result in results:
            quiet = " (maintenance window: not alerted)" if result.check in assessment.in_maintenance else ""
            log_result(self.log, result, quiet)
        for name in assessment.removed:
            self.log.info("%s is no longer in the config: its state is forgotten", name)
        if results and all(r.status == "skipped" for r in results) and not assessment.removed:
            # Checked nothing, so it delivers nothing either: a placeholder finishing first
            # would otherwise split a real task's alerts into two messages.
            raise AirflowSkipException("; ".join(r.summary for r in results))
        # The alert goes out now, seconds after the checks, from the run that reached the
        # threshold; with it recoveries and anything an earlier delivery could not send.
        MaintenanceNotifier().deliver(context)
        if assessment.paging:
            raise ChecksFailed(assessment.paging)
        from maintenance.results import json_safe

        # The return value is the task's XCom, which Airflow stores as strict JSON.
        return [json_safe(r.to_dict()) for r in results]
