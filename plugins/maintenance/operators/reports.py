"""The weekly and monthly reports: render, publish (folder or S3Hook), announce in Slack, prune;
and the task that keeps a run red when one of its checks failed (the report runs anyway)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from maintenance.exceptions import ChecksFailed
from maintenance.notifications.slack import MaintenanceNotifier
from maintenance.operators.base import (
    MaintenanceCheckOperator, connection_or_none, enqueue_report_once, skip_before_first_result,
)

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


def announcement(data: dict[str, Any], link: str) -> str:
    """The Slack line of a published report: the figures a reader wants first, and the link."""
    from maintenance.durations import format_duration

    up = data["uptime"]
    name = "Monthly" if data["kind"] == "monthly" else "Weekly"
    end = data["end"] - timedelta(days=1)
    parts = [f"{name} report {data['label']} ({data['start']:%Y-%m-%d} to {end:%Y-%m-%d})"]
    if up["overall_percent"] is not None:
        parts.append(f"uptime {up['overall_percent']:.2f}% (target {up['target_percent']:g}%: "
                     f"{'met' if up['met'] else 'missed'})")
        parts.append(f"{len(up['incidents'])} incident(s), {format_duration(up['downtime_s'])} down")
    else:   # "0 incident(s), 0s down" would read as a clean week
        parts.append("no uptime check was counted")
    backups = data["backups"]
    if backups is not None:
        last = backups["last_verification"]
        parts.append(f"backups verified {last['checked_at']:%Y-%m-%d}" if backups["verified"] and last
                     else "backups NOT verified")
    findings = data["findings"]
    if findings and findings["critical_open"]:
        parts.append(f"{len(findings['critical_open'])} critical finding(s) open")
    link_text = f"<{link}|open the report>" if link.startswith(("http://", "https://")) else link
    return "; ".join(parts) + f". {link_text}"


class PeriodReportOperator(MaintenanceCheckOperator):
    """Render the weekly or monthly report from the results store, publish and announce it.

    Runs after the period's other tasks whatever their outcome (trigger_rule all_done), so a
    failed check shows in the report; RunOutcomeOperator keeps that run red.
    """

    ui_color = "#f3ecfb"

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        if kind not in ("weekly", "monthly"):
            raise ValueError(f"kind must be weekly or monthly, not {kind!r}")
        self.kind = kind

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from maintenance.config import get_config

        config = get_config()
        results = self.run_checks(config, context)
        out = self.conclude(context, config, results)
        sent = MaintenanceNotifier(channel="report", task_scoped=False).deliver(context)
        self.log.info("report announcement: %d Slack message item(s) delivered", sent)
        return out

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.alerting.delivery import ui_base_url
        from maintenance.hooks.results_db import results_store
        from maintenance.reports import publish
        from maintenance.reports.data import monitored, report_data, report_period
        from maintenance.reports.render import render_report
        from maintenance.results import CheckResult, utcnow

        store = results_store(config.results.conn_id)
        now = utcnow()
        at = context.get("logical_date") or now
        skip_before_first_result(store, report_period(self.kind, at)[0], f"the {self.kind} report")
        data = report_data(store, self.kind, checks=monitored(config), site=config.site.name, now=now, at=at,
                           target_percent=config.uptime.target_percent, windows=config.maintenance_windows)
        html = render_report(data)
        name = publish.report_name(config.site.name, self.kind, data["label"])
        settings = config.reports
        check = f"report.{self.kind}"
        common = dict(check=check, group="reports", runbook=context["dag"].dag_id, critical=False)
        retention = timedelta(days=settings.retention_days)
        try:
            if settings.bucket:
                from maintenance.hooks.storage import client_error, s3_client

                if connection_or_none(settings.conn_id) is None:
                    return [CheckResult(status="fail", reason="not_configured", **common,
                                        summary=f"report not published: reports.bucket is set but connection "
                                                f"'{settings.conn_id}' is not")]
                client = s3_client(settings.conn_id)
                try:
                    published = publish.upload_s3(client, settings.bucket, settings.prefix, name, html,
                                                  settings.link_base, ui_base_url(config))
                    pruned = publish.prune_s3(client, settings.bucket, settings.prefix, retention, now)
                except Exception as exc:  # noqa: BLE001 - botocore errors are classified, never raised raw
                    reason, text = client_error(exc)
                    return [CheckResult(status="fail", reason=reason, **common,
                                        summary=f"report upload to s3://{settings.bucket}/{settings.prefix} failed: {text}")]
            else:
                folder = publish.reports_folder(config.reports)
                published = publish.write_folder(folder, name, html, settings.link_base, ui_base_url(config))
                pruned = publish.prune_folder(folder, retention, now)
        except OSError as exc:
            return [CheckResult(status="fail", reason="write_failed", **common,
                                summary=f"report not written to {publish.reports_folder(settings)}: {exc.strerror or exc}")]
        for old in pruned:
            self.log.info("pruned report older than %d days: %s", settings.retention_days, old)
        up = data["uptime"]
        result = CheckResult(
            status="ok", target=published.link, summary=announcement(data, published.link), **common,
            metrics={"uptime_percent": up["overall_percent"], "incidents": len(up["incidents"]),
                     "downtime_s": up["downtime_s"], "bytes": published.size, "pruned": len(pruned)},
            evidence={"location": published.location, "label": data["label"], "pruned": pruned[:50]})
        self.log.info("report %s written to %s (%d bytes)", data["label"], published.location, published.size)
        enqueue_report_once(store, result, context, channel="report")
        return [result]


class RunOutcomeOperator(BaseOperator):
    """Fails the run when a check task of it failed.

    The report task runs after every check with trigger_rule all_done, and a run whose leaves
    all succeed is green: without this task a failed backup check would end in a green run
    (and a success heartbeat). It pages nobody itself: the failed task has alerted already.
    """

    ui_color = "#fdecea"

    def __init__(self, **kwargs: Any) -> None:
        kwargs["trigger_rule"] = "one_failed"
        super().__init__(**kwargs)

    def execute(self, context: Any) -> None:
        raise UpstreamCheckFailed()


class UpstreamCheckFailed(ChecksFailed):
    """ChecksFailed: not retried, and the failure callback adds no crash alert (the failed
    check task has sent its own); it only delivers what is still owed."""

    def __init__(self) -> None:
        super().__init__([])
        self.args = ("a check task of this run failed (its alert was sent by that task); "
                     "the report was still produced",)
