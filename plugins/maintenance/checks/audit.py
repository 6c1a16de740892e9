"""The monthly full system audit (plain functions): which providers are configured and how their
credential probe went, the checks skipped for want of configuration, and the month's record per
check family from the results store (uptime and incidents, error trend, backup verification,
open vulnerabilities, security grades), rolled into one summary.

The record re-reads what the other tasks stored: a failure they already paged is reported here
as a warn (for the monthly report), never paged twice. Only a credential the audit itself finds
broken (unauthorized, or a wrong project/account) fails.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from statistics import mean
from typing import Any

from maintenance.config import MaintenanceConfig
from maintenance.durations import format_duration
from maintenance.results import CheckResult, not_configured


RUNBOOK = "maintenance_monthly"
GROUP = "audit"
UNREACHABLE = {"timeout", "refused", "dns", "tls", "connection_error", "http_5xx", "rate_limited"}


def month_before(end: datetime) -> datetime:
    """The same instant one calendar month earlier (day clamped): a run on the 1st at 05:00
    covers the previous month exactly."""
    year, month = (end.year - 1, 12) if end.month == 1 else (end.year, end.month - 1)
    return end.replace(year=year, month=month, day=min(end.day, calendar.monthrange(year, month)[1]))


# -- credentials ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Provider:
    name: str            # what the summary calls it: "atlas", "s3:backups", "mongo:mongo_default"
    kind: str            # hooks/probes.py PROBES key
    conn_id: str
    target: str = ""     # bucket, origin, mail domain
    contact: str = ""    # key of `contacts`


def configured_providers(config: MaintenanceConfig, mongo_conn_ids: tuple[str, ...] = ()) -> list[Provider]:
    """Every provider the config uses (enabled sections), with the connection its checks need.

    mongo_conn_ids: MongoDB connections that exist in Airflow (the app database has no section
    of its own: its connection is its configuration).
    """
    found: list[Provider] = []
    simple = (("atlas", config.atlas, "atlas"), ("sentry", config.sentry, "sentry"),
              ("stripe", config.stripe, "stripe"), ("mpesa", config.mpesa, "mpesa"),
              ("vercel", config.vercel, "vercel"), ("uptimerobot", config.uptimerobot, None),
              ("pingdom", config.pingdom, None))
    for name, section, contact in simple:
        if section is not None and section.enabled:
            found.append(Provider(name, name, section.conn_id, contact=contact or ""))
    if config.performance is not None and config.performance.enabled:
        origin = (config.performance.origins or [config.site.url])[0]
        found.append(Provider("crux", "crux", config.performance.crux_conn_id, origin))
    if config.email is not None:
        conn = config.email.conn_id or f"{config.email.provider}_default"
        found.append(Provider(config.email.provider, config.email.provider, conn, config.email.domain or "",
                              contact="email"))
    for bucket in config.storage.buckets if config.storage else []:
        if bucket.kind == "r2":
            found.append(Provider(f"r2:{bucket.name}", "r2", bucket.cloudflare_conn_id, bucket.name, "storage"))
        else:
            found.append(Provider(f"s3:{bucket.name}", "s3", bucket.conn_id, bucket.name, "storage"))
    mongo = list(mongo_conn_ids)
    if config.atlas is not None and config.atlas.restore_target is not None:
        mongo.append(config.atlas.restore_target.conn_id)
    for conn_id in dict.fromkeys(mongo):
        found.append(Provider(f"mongo:{conn_id}", "mongo", conn_id, contact="atlas"))
    return found


def classify(reason: str | None) -> str:
    """ok | unauthorized | unreachable | error (answered, but not as a valid configuration would)."""
    if reason is None:
        return "ok"
    if reason == "unauthorized":
        return "unauthorized"
    return "unreachable" if reason in UNREACHABLE else "error"


def credential_result(provider: Provider, answer: str | None, reason: str | None = None,
                      message: str = "") -> CheckResult:
    """The probe's outcome: answer (it worked) or reason + message (a classified ProviderError)."""
    outcome = classify(reason)
    common = dict(check=f"audit.credentials.{provider.name}", target=provider.conn_id, group=GROUP,
                  runbook=RUNBOOK, provider=provider.contact or None,
                  metrics={"ok": int(outcome == "ok")}, evidence={"outcome": outcome, "kind": provider.kind})
    if outcome == "ok":
        return CheckResult(status="ok", summary=f"{provider.name}: ok, {answer}", critical=False, **common)
    if outcome == "unreachable":
        # Retried with back-off already; the daily checks watch availability. Reported, not paged.
        return CheckResult(status="warn", reason=reason, critical=False, **common,
                           summary=f"{provider.name}: unreachable ({reason}): {message}")
    verb = "credentials refused" if outcome == "unauthorized" else "answered with an error"
    fix = "" if f"'{provider.conn_id}'" in message else f" (fix connection '{provider.conn_id}')"
    return CheckResult(status="fail", reason=reason, **common,
                       summary=f"{provider.name}: {verb} ({reason}): {message}{fix}")


def missing_connection(provider: Provider) -> CheckResult:
    return not_configured(f"audit.credentials.{provider.name}", GROUP,
                          f"{provider.name} is in the config but Airflow connection '{provider.conn_id}' does not exist")


# -- skipped for want of configuration ----------------------------------------------------------------
def skipped_checks(latest: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Checks whose latest result is 'skipped: not configured (how)': name and how to configure."""
    found = []
    for row in latest:
        if row["reason"] != "not_configured" or row["check_name"].startswith("audit."):
            continue
        how = row["summary"].removeprefix("skipped: not configured (").removesuffix(")")
        found.append({"check": row["check_name"], "how": how, "task": f"{row.get('dag_id')}.{row.get('task_id')}",
                      "since": row["checked_at"].isoformat() if row.get("checked_at") else None})
    return found


def skipped_result(skipped: list[dict[str, str]], audit_skipped: int = 0) -> CheckResult:
    """audit_skipped: how many of the audit's own sections were skipped (listed on their own lines)."""
    common = dict(check="audit.not_configured", group=GROUP, runbook=RUNBOOK, critical=False,
                  metrics={"not_configured": len(skipped)}, evidence={"checks": skipped})
    if not skipped:
        return CheckResult(status="ok", **common, summary="no check is skipped for want of configuration" if not
                           audit_skipped else "no other task's check is skipped for want of configuration "
                                              f"(the audit's {audit_skipped} skipped section(s) are listed below)")
    lines = "; ".join(f"{s['check']}: {s['how']}" for s in skipped[:8])
    more = f"; and {len(skipped) - 8} more" if len(skipped) > 8 else ""
    return CheckResult(status="ok", summary=f"{len(skipped)} check(s) skipped for want of configuration: {lines}{more}",
                       **common)


# -- the month's record ----------------------------------------------------------------------------------
def uptime_month(endpoints: list[dict[str, Any]], *, target_percent: float,
                 existed: set[str] | None = None) -> list[CheckResult]:
    """Per endpoint: uptime %, incidents (count, total and longest downtime, mean time to recover),
    from the monthly report's own figures (reports/data.py uptime_section: one computation, so the
    audit and the report of a month agree to the digit).

    existed: the endpoints with a result from before the month (None: all). One without results
    this month is named only if it existed for the whole month: a new endpoint has no month yet.
    """
    results = []
    for endpoint in endpoints:
        name, check = endpoint["name"], f"audit.uptime.{endpoint['name']}"
        if not endpoint["counted"] and existed is not None and name not in existed:
            continue
        if not endpoint["counted"]:
            results.append(CheckResult(check=check, group=GROUP, status="warn", reason="no_data", runbook="uptime_monitor",
                                       critical=False, summary=f"{name}: no results this month (is uptime_monitor running?)"))
            continue
        percent, found = endpoint["uptime_percent"], endpoint["incidents"]
        ongoing = sum(1 for i in found if i["ongoing"])
        metrics = {"uptime_percent": round(percent, 3), "checks": endpoint["counted"], "incidents": len(found),
                   "downtime_total_s": round(endpoint["downtime_s"], 1), "downtime_longest_s": round(endpoint["longest_s"], 1),
                   "mttr_s": round(endpoint["mttr_s"], 1) if endpoint["mttr_s"] is not None else None, "ongoing": ongoing}
        summary = f"{name}: {percent:.2f}% up over {endpoint['counted']} checks; {len(found)} incident(s)"
        if found:
            summary += (f", {format_duration(metrics['downtime_total_s'])} down in all, longest "
                        f"{format_duration(metrics['downtime_longest_s'])}")
            summary += f", mean time to recover {format_duration(metrics['mttr_s'])}" if metrics["mttr_s"] is not None \
                else ""
            summary += f", {ongoing} still open" if ongoing else ""
        below = percent < target_percent
        results.append(CheckResult(
            check=check, group=GROUP, status="warn" if below else "ok", reason="below_target" if below else None,
            summary=summary + (f" (target {target_percent:g}%)" if below else ""), runbook="uptime_monitor",
            critical=False, metrics=metrics,
            evidence={"incidents": [{"start": i["start"].isoformat(), "end": i["end"].isoformat() if i["end"] else None,
                                     "duration_s": i["duration_s"], "reason": i["reason"]} for i in found[:100]]}))
    return results


def _daily_errors(rows: list[dict[str, Any]]) -> list[float]:
    """errors_24h of each daily Sentry review (one value per run: its last try)."""
    per_run: dict[Any, float] = {}
    for row in rows:
        value = (row.get("metrics") or {}).get("errors_24h")
        if row["check_name"] == "sentry.error_rate" and isinstance(value, (int, float)):
            per_run[row.get("run_id") or row["checked_at"]] = float(value)
    return list(per_run.values())


def error_trend(this_month: list[dict[str, Any]], last_month: list[dict[str, Any]], factor: float) -> CheckResult:
    """Errors per day (the daily Sentry review's 24 h counts) this month against last month, and
    the month's fatal-issue and new-issue days."""
    now, before = _daily_errors(this_month), _daily_errors(last_month)
    fatal_days = len({r.get("run_id") for r in this_month if r["check_name"] == "sentry.critical_errors"
                      and r["status"] == "fail"})
    new_issues = sum(int((r.get("metrics") or {}).get("new_issues") or 0) for r in
                     {r.get("run_id"): r for r in this_month if r["check_name"] == "sentry.new_issues"}.values())
    common = dict(check="audit.errors", group=GROUP, runbook="maintenance_daily", provider="sentry", critical=False)
    if not now and not before:
        return CheckResult(status="skipped", reason="no_data", **common,
                           summary="skipped: no Sentry review is stored yet (new: its first month is not over)")
    if not now:
        return CheckResult(status="warn", reason="no_data", **common,
                           summary="errors: no Sentry review results this month (is maintenance_daily running?)")
    per_day, per_day_before = mean(now), (mean(before) if before else None)
    metrics = {"errors_per_day": round(per_day, 1), "errors_per_day_last_month": round(per_day_before, 1)
               if per_day_before is not None else None, "days": len(now), "fatal_issue_days": fatal_days,
               "new_issues": new_issues}
    summary = f"errors: {per_day:.0f}/day over {len(now)} day(s)"
    rising = False
    if per_day_before is not None:
        change = (per_day - per_day_before) / per_day_before * 100 if per_day_before else None
        summary += f" (last month {per_day_before:.0f}/day" + (f", {change:+.0f}%)" if change is not None else ")")
        rising = per_day > factor * max(per_day_before, 1)
        metrics["change_percent"] = round(change, 1) if change is not None else None
    else:
        summary += " (no record of last month)"
    summary += f"; {fatal_days} day(s) with fatal issues, {new_issues} new issue(s)"
    if rising:
        return CheckResult(status="warn", reason="error_trend_up", metrics=metrics, **common,
                           summary=summary + f": more than {factor:g}x last month")
    return CheckResult(status="ok", metrics=metrics, summary=summary, **common)


def backup_record(rows: list[dict[str, Any]], existed: bool = True) -> CheckResult:
    """The month's backup checks: runs that failed per check, and the newest verification outcome.
    existed: a backup check stored a result before the month (else a month without one is new)."""
    backups = [r for r in rows if r["check_group"] == "backups" and r["status"] != "skipped"]
    common = dict(check="audit.backups", group=GROUP, runbook="maintenance_monthly", critical=False)
    if not backups and not existed:
        return CheckResult(status="skipped", reason="no_data", **common,
                           summary="skipped: no backup check result is stored yet (new: its first month is not over)")
    if not backups:
        return CheckResult(status="warn", reason="no_data", **common,
                           summary="backups: no backup check results this month (are the daily/weekly/monthly "
                                   "DAGs running?)")
    latest: dict[str, dict[str, Any]] = {}
    failed_runs: dict[str, set[Any]] = {}
    for row in backups:
        latest[row["check_name"]] = row
        if row["status"] == "fail":
            failed_runs.setdefault(row["check_name"], set()).add(row.get("run_id"))
    verification = [n for n in latest if n == "atlas.restore_archive" or n.endswith(".checksums")]
    now_failing = sorted(n for n, r in latest.items() if r["status"] == "fail")
    metrics = {"checks": len(latest), "failing_now": len(now_failing),
               "failed_runs": sum(len(v) for v in failed_runs.values()),
               "verified_ok": sum(1 for n in verification if latest[n]["status"] == "ok"),
               "verifications": len(verification)}
    parts = [f"{n} {latest[n]['status']}" for n in sorted(verification)] or ["no restore test or checksum "
                                                                               "verification this month"]
    summary = f"backups: {len(latest)} check(s); verification: " + ", ".join(parts)
    if failed_runs:
        summary += "; failed this month: " + ", ".join(f"{n} ({len(v)} run(s))" for n, v in sorted(failed_runs.items()))
    evidence = {"latest": {n: {"status": r["status"], "summary": r["summary"],
                               "checked_at": r["checked_at"].isoformat()} for n, r in latest.items()}}
    bad = bool(now_failing) or not verification or metrics["verified_ok"] < len(verification)
    return CheckResult(status="warn" if bad else "ok", reason="backup_problems" if bad else None,
                       metrics=metrics, evidence=evidence, summary=summary, **common)


def open_vulnerabilities(latest: list[dict[str, Any]]) -> CheckResult:
    """Open vulnerabilities per scanned lock file (the newest scan of each)."""
    scans = [r for r in latest if r["check_name"].startswith("dependencies.vulnerabilities.")
             and r["status"] != "skipped" and "vulnerabilities" in (r.get("metrics") or {})]
    common = dict(check="audit.vulnerabilities", group=GROUP, runbook="maintenance_weekly", critical=False)
    if not scans:   # none ever stored: the scan is new, not missing
        return CheckResult(status="skipped", reason="no_data", **common,
                           summary="skipped: no dependency scan is stored yet (check_dependency_updates runs weekly)")
    severities = ("critical", "high", "moderate", "low", "unknown")   # checks/dependencies.py SEVERITIES
    totals = {s: sum(int((r["metrics"] or {}).get(f"sev_{s}") or 0) for r in scans) for s in severities}
    total = sum(int(r["metrics"]["vulnerabilities"] or 0) for r in scans)
    metrics = {"open": total, "sources": len(scans), **{f"sev_{s}": n for s, n in totals.items() if n}}
    per_source = ", ".join(f"{r['check_name'].rsplit('.', 1)[-1]} {int(r['metrics']['vulnerabilities'] or 0)}"
                           for r in scans)
    level = ", ".join(f"{n} {s}" for s, n in totals.items() if n)
    summary = f"vulnerabilities: {total} open" + (f" ({level})" if level else "") + f"; per lock file: {per_source}"
    serious = totals["critical"] + totals["high"]
    return CheckResult(status="warn" if serious else "ok", reason="open_vulnerabilities" if serious else None,
                       metrics=metrics, summary=summary, **common,
                       evidence={"sources": {r["check_name"]: r["summary"] for r in scans}})


def security_grades(latest: list[dict[str, Any]]) -> CheckResult:
    """The newest Observatory-style grade of each scanned site (and TLS days left)."""
    from maintenance.checks.security import GRADE_ORDER

    sites = [r for r in latest if r["check_name"].startswith("security.headers.") and (r.get("evidence") or {}).get("grade")]
    tls = {r["check_name"].removeprefix("security.tls."): r for r in latest if r["check_name"].startswith("security.tls.")}
    common = dict(check="audit.security", group=GROUP, runbook="maintenance_monthly", critical=False)
    if not sites:   # none ever stored: the scan is new, not missing
        return CheckResult(status="skipped", reason="no_data", **common,
                           summary="skipped: no security scan grade is stored yet (security_scan runs monthly)")
    parts, worst = [], "A+"
    for row in sites:
        host = row["check_name"].removeprefix("security.headers.")
        grade = row["evidence"]["grade"]
        if GRADE_ORDER.index(grade) > GRADE_ORDER.index(worst):
            worst = grade
        part = f"{host} {grade}"
        previous = row["evidence"].get("previous_grade")
        if previous and previous != grade:
            part += f" (was {previous})"
        days = ((tls.get(host) or {}).get("metrics") or {}).get("days_left")
        if isinstance(days, (int, float)):
            part += f", certificate {days:.0f} days left"
        parts.append(part)
    weak = GRADE_ORDER.index(worst) > GRADE_ORDER.index("B")
    return CheckResult(status="warn" if weak else "ok", reason="weak_grade" if weak else None, **common,
                       metrics={"sites": len(sites), "worst_grade_rank": GRADE_ORDER.index(worst)},
                       evidence={"worst_grade": worst, "grades": {r["check_name"]: r["evidence"]["grade"] for r in sites}},
                       summary="security: grade " + "; ".join(parts))


# -- the summary ------------------------------------------------------------------------------------------
def audit_summary(results: list[CheckResult], start: datetime, end: datetime) -> CheckResult:
    """One message for Slack and the monthly report: every finding on its line, failing first."""
    counted = [r for r in results if r.status != "skipped"]
    creds = [r for r in results if r.check.startswith("audit.credentials.")]
    creds_ok = sum(1 for r in creds if r.status == "ok")
    by_status = {s: sum(1 for r in counted if r.status == s) for s in ("fail", "warn", "ok")}
    order = {"fail": 0, "warn": 1, "ok": 2, "skipped": 3}
    head = (f"Monthly audit {start:%Y-%m-%d} to {end:%Y-%m-%d}: {by_status['fail']} failing, {by_status['warn']} "
            f"to look at, {by_status['ok']} ok; credentials {creds_ok}/{len(creds)} ok")
    lines = [head]
    for result in sorted(results, key=lambda r: (order[r.status], r.check)):
        if result.check.startswith("audit.credentials.") and result.status == "ok":
            continue    # counted in the head line
        text = result.summary
        if result.status == "skipped":   # name the family: its summary only says how to configure it
            text = f"{result.check.removeprefix('audit.')}: {text.removeprefix('skipped: ')}"
        lines.append(f"• [{result.status}] {text}")
    return CheckResult(check="audit.summary", group=GROUP, status="warn" if by_status["fail"] or by_status["warn"]
                       else "ok", critical=False, runbook=RUNBOOK, summary="\n".join(lines)[:2800],
                       metrics={"failing": by_status["fail"], "warnings": by_status["warn"], "ok": by_status["ok"],
                                "credentials_ok": creds_ok, "credentials": len(creds)},
                       evidence={"period": [start.isoformat(), end.isoformat()]})
