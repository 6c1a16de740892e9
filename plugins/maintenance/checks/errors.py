"""The daily error review (Sentry): critical errors, new issues, error-rate spikes."""

from __future__ import annotations

from statistics import median
from typing import Any

from maintenance.results import CheckResult

RUNBOOK = "maintenance_daily"


def _issue_line(issue: dict[str, Any]) -> str:
    return f"{issue.get('shortId', issue.get('id'))} {issue.get('title', '?')} ({issue.get('count', '?')} events)"


def critical_errors(fatal: list[dict[str, Any]]) -> CheckResult:
    """Unresolved fatal issues seen in the period: the guide's 'Alerts: critical errors'."""
    common = dict(check="sentry.critical_errors", group="errors", provider="sentry", runbook=RUNBOOK,
                  metrics={"fatal_issues": len(fatal)},
                  evidence={"issues": [{"id": i.get("shortId"), "title": i.get("title"),
                                        "link": i.get("permalink")} for i in fatal[:20]]})
    if not fatal:
        return CheckResult(status="ok", summary="no unresolved fatal errors in the last 24h", **common)
    lines = "; ".join(_issue_line(i) for i in fatal[:5])
    return CheckResult(status="fail", reason="fatal_errors",
                       summary=f"{len(fatal)} unresolved fatal issue(s) in the last 24h: {lines}", **common)


def new_issues(issues: list[dict[str, Any]], max_per_day: int) -> CheckResult:
    common = dict(check="sentry.new_issues", group="errors", provider="sentry", runbook=RUNBOOK,
                  metrics={"new_issues": len(issues)},
                  evidence={"issues": [{"id": i.get("shortId"), "title": i.get("title")} for i in issues[:20]]})
    summary = f"{len(issues)} new issue(s) in the last 24h"
    if issues:
        summary += ": " + "; ".join(_issue_line(i) for i in issues[:5])
    if len(issues) > max_per_day:
        return CheckResult(status="warn", reason="many_new_issues", summary=f"{summary} (more than {max_per_day})",
                           **common)
    return CheckResult(status="ok", summary=summary, **common)


def error_rate(hourly: list[int], spike_factor: float, min_per_hour: int) -> CheckResult:
    """The last full hour against the median of the hours before it: 'Alerts: high error rate'."""
    common = dict(check="sentry.error_rate", group="errors", provider="sentry", runbook=RUNBOOK)
    if len(hourly) < 3:
        return CheckResult(status="warn", reason="no_data", summary="too few hourly error counts from Sentry",
                           **common)
    # The series ends with the current, partial hour: judge the last full one.
    last, before = hourly[-2], hourly[:-2]
    baseline = median(before)
    metrics = {"errors_last_hour": last, "median_errors_per_hour": baseline, "errors_24h": sum(hourly)}
    threshold = max(min_per_hour, spike_factor * baseline)
    if last > threshold:
        return CheckResult(status="fail", reason="error_spike", metrics=metrics, **common,
                           summary=f"{last} errors in the last hour, {last / max(baseline, 1):.1f}x the median "
                                   f"of {baseline:g}/h (alert above {threshold:g})")
    return CheckResult(status="ok", metrics=metrics, **common,
                       summary=f"{last} errors in the last hour (median {baseline:g}/h, {sum(hourly)} in 24h)")
