"""The monthly audit's plain functions: the period, providers and their classification, the
checks skipped for want of configuration, and the month's record per check family."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from maintenance.checks.audit import (
    Provider, audit_summary, backup_record, classify, configured_providers, credential_result, error_trend,
    month_before, open_vulnerabilities, security_grades, skipped_checks, skipped_result, uptime_month,
)
from maintenance.config import MaintenanceConfig
from maintenance.results import CheckResult

END = datetime(2026, 8, 1, 5, 0, tzinfo=timezone.utc)


def row(check, status, at, *, reason=None, summary="", metrics=None, evidence=None, group="", run_id=None,
        in_maintenance=False):
    return {"check_name": check, "status": status, "checked_at": at, "reason": reason, "summary": summary,
            "metrics": metrics or {}, "evidence": evidence or {}, "check_group": group, "run_id": run_id,
            "in_maintenance": in_maintenance, "dag_id": "d", "task_id": "t"}


def test_month_before_is_the_previous_calendar_month_with_the_day_clamped():
    assert month_before(END) == datetime(2026, 7, 1, 5, 0, tzinfo=timezone.utc)
    assert month_before(datetime(2026, 1, 1, tzinfo=timezone.utc)) == datetime(2025, 12, 1, tzinfo=timezone.utc)
    assert month_before(datetime(2026, 3, 31, tzinfo=timezone.utc)) == datetime(2026, 2, 28, tzinfo=timezone.utc)


def test_configured_providers_follow_the_config_sections_and_existing_mongo_connections():
    config = MaintenanceConfig.model_validate({
        "site": {"name": "s", "url": "https://s.example"},
        "atlas": {"restore_test": False}, "sentry": {}, "stripe": {"enabled": False}, "vercel": {},
        "email": {"provider": "sendgrid"}, "performance": {},
        "storage": {"buckets": [{"name": "files"}, {"name": "media", "kind": "r2", "cloudflare_conn_id": "cf"}]}})
    providers = {p.name: p for p in configured_providers(config, ("mongo_default",))}
    assert sorted(providers) == ["atlas", "crux", "mongo:mongo_default", "r2:media", "s3:files", "sendgrid",
                                 "sentry", "vercel"]
    assert providers["sendgrid"].conn_id == "sendgrid_default"
    assert (providers["r2:media"].conn_id, providers["r2:media"].target) == ("cf", "media")
    assert providers["crux"].target == "https://s.example"
    bare = MaintenanceConfig.model_validate({"site": {"name": "s", "url": "https://s.example"}})
    assert configured_providers(bare) == []


@pytest.mark.parametrize("reason, outcome, status", [
    (None, "ok", "ok"), ("unauthorized", "unauthorized", "fail"), ("timeout", "unreachable", "warn"),
    ("refused", "unreachable", "warn"), ("http_5xx", "unreachable", "warn"), ("http_4xx", "error", "fail"),
    ("malformed_response", "error", "fail"),
])
def test_credential_outcomes_are_classified(reason, outcome, status):
    assert classify(reason) == outcome
    result = credential_result(Provider("stripe", "stripe", "stripe_default", contact="stripe"),
                               "key valid" if reason is None else None, reason, "HTTP 401")
    assert (result.check, result.status, result.evidence["outcome"]) == ("audit.credentials.stripe", status, outcome)
    if status == "fail":
        assert "connection 'stripe_default'" in result.summary and result.provider == "stripe"


def test_skipped_checks_list_how_to_configure_and_leave_the_audit_out():
    latest = [row("security.scan", "skipped", END, reason="not_configured",
                  summary="skipped: not configured (add a security_scan: section)"),
              row("audit.uptime", "skipped", END, reason="not_configured", summary="skipped: not configured (x)"),
              row("home", "ok", END),
              row("security.logs", "skipped", END, reason="not_implemented", summary="skipped: not implemented")]
    skipped = skipped_checks(latest)
    assert [(s["check"], s["how"]) for s in skipped] == [("security.scan", "add a security_scan: section")]
    result = skipped_result(skipped)
    assert result.metrics["not_configured"] == 1 and "security.scan: add a security_scan: section" in result.summary
    assert skipped_result([]).summary == "no check is skipped for want of configuration"
    assert skipped_result([], audit_skipped=2).summary == ("no other task's check is skipped for want of configuration "
                                                           "(the audit's 2 skipped section(s) are listed below)")


def test_uptime_month_is_the_monthly_reports_computation(tmp_path):
    """The audit's uptime lines come from the report's uptime_section: the same figures, the same digits."""
    from maintenance.reports.data import Monitored, report_data, report_period
    from maintenance.reports.render import render_report
    from maintenance.results import ResultsStore

    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    start, end, _ = report_period("monthly", END)
    at = end - timedelta(hours=3)
    # 2 incidents: 3 failed checks (recovered after 15 min) and one still open at the end of the month
    pattern = ["ok"] * 10 + ["fail"] * 3 + ["ok"] * 10 + ["fail"] * 2
    rows = []
    for status in pattern:
        rows.append(CheckResult(check="home", status=status, summary="", time=at,
                                reason="timeout" if status == "fail" else None))
        at += timedelta(minutes=5)
    store.record(rows + [CheckResult(check="home", status="ok", summary="", time=start - timedelta(days=1))])
    store.record([CheckResult(check="home", status="fail", summary="", time=at)], in_maintenance={"home"})
    report = report_data(store, "monthly", checks=[Monitored("home"), Monitored("api"), Monitored("new")], site="s",
                         now=END, at=END)
    existed = {"home", "api"}   # "new" was added this month: it has no month to judge yet
    home, api = uptime_month(report["uptime"]["endpoints"], target_percent=99.5, existed=existed)
    assert home.check == "audit.uptime.home" and home.status == "warn" and home.reason == "below_target"
    assert home.metrics["checks"] == 25 and home.metrics["incidents"] == 2 and home.metrics["ongoing"] == 1
    assert home.metrics["uptime_percent"] == pytest.approx(80.0)
    assert home.metrics["mttr_s"] == 900.0                       # first failure to the first ok after it
    assert home.metrics["downtime_total_s"] == 900.0 + 3900.0    # the open one: from its start to the month's end
    assert "2 incident(s)" in home.summary and "1 still open" in home.summary
    assert home.summary.startswith("home: 80.00% up over 25 checks")
    assert "80.00%" in render_report(report), "the report shows the same figure"
    assert (api.status, api.reason) == ("warn", "no_data")


def test_error_trend_compares_errors_per_day_with_last_month():
    start = month_before(END)
    this = [row("sentry.error_rate", "ok", start + timedelta(days=d), metrics={"errors_24h": 300}, run_id=f"r{d}")
            for d in range(10)]
    this += [row("sentry.critical_errors", "fail", start + timedelta(days=2), run_id="r2"),
             row("sentry.new_issues", "ok", start + timedelta(days=3), metrics={"new_issues": 4}, run_id="r3"),
             row("sentry.new_issues", "ok", start + timedelta(days=3, minutes=5), metrics={"new_issues": 4}, run_id="r3")]
    before = [row("sentry.error_rate", "ok", start - timedelta(days=d + 1), metrics={"errors_24h": 100},
                  run_id=f"p{d}") for d in range(10)]
    up = error_trend(this, before, 1.5)
    assert (up.status, up.reason) == ("warn", "error_trend_up")
    assert up.metrics["errors_per_day"] == 300 and up.metrics["errors_per_day_last_month"] == 100
    assert up.metrics["change_percent"] == 200 and up.metrics["fatal_issue_days"] == 1 and up.metrics["new_issues"] == 4
    steady = error_trend(this, [dict(r, metrics={"errors_24h": 280}) for r in before], 1.5)
    assert steady.status == "ok" and "+7%" in steady.summary
    assert error_trend([], before, 1.5).reason == "no_data"
    assert "no record of last month" in error_trend(this, [], 1.5).summary


def test_backup_record_names_failed_runs_and_the_latest_verification():
    start = month_before(END)
    rows = [row("atlas.snapshot_age", "fail", start + timedelta(days=3), group="backups", run_id="a"),
            row("atlas.snapshot_age", "ok", start + timedelta(days=4), group="backups", run_id="b"),
            row("atlas.restore_archive", "ok", start + timedelta(days=1), group="backups", run_id="m"),
            row("storage.files.checksums", "fail", start + timedelta(days=1), group="backups", run_id="m"),
            row("storage.files.checksums", "ok", start + timedelta(days=1, minutes=3), group="backups", run_id="m"),
            row("atlas.access_list", "ok", start, group="security")]
    result = backup_record(rows)
    assert result.status == "ok", result.summary
    assert result.metrics == {"checks": 3, "failing_now": 0, "failed_runs": 2, "verified_ok": 2, "verifications": 2}
    assert "atlas.snapshot_age (1 run(s))" in result.summary
    failing = backup_record(rows + [row("atlas.restore_archive", "fail", start + timedelta(days=5), group="backups")])
    assert failing.status == "warn" and "atlas.restore_archive fail" in failing.summary
    no_verification = backup_record(rows[:2])
    assert no_verification.status == "warn" and "no restore test" in no_verification.summary
    assert backup_record([]).reason == "no_data"


def test_open_vulnerabilities_add_up_the_newest_scan_of_each_lock_file():
    latest = [row("dependencies.vulnerabilities.web", "warn", END, metrics={"vulnerabilities": 3, "sev_high": 1,
                                                                             "sev_low": 2}),
              row("dependencies.vulnerabilities.orchestrator", "ok", END, metrics={"vulnerabilities": 0}),
              row("dependencies.vulnerabilities.api", "fail", END, reason="unauthorized")]   # no metrics: not counted
    result = open_vulnerabilities(latest)
    assert (result.status, result.metrics["open"], result.metrics["sources"]) == ("warn", 3, 2)
    assert "3 open (1 high, 2 low)" in result.summary and "web 3" in result.summary
    assert open_vulnerabilities(latest[1:2]).status == "ok"
    assert open_vulnerabilities([]).reason == "no_data"


def test_security_grades_show_each_site_its_drop_and_certificate():
    latest = [row("security.headers.shop.example", "fail", END, evidence={"grade": "C", "previous_grade": "A"}),
              row("security.tls.shop.example", "ok", END, metrics={"days_left": 45.2}),
              row("security.headers.api.example", "ok", END, evidence={"grade": "A+"})]
    result = security_grades(latest)
    assert result.status == "warn" and result.evidence["worst_grade"] == "C"
    assert "shop.example C (was A), certificate 45 days left" in result.summary and "api.example A+" in result.summary
    assert security_grades(latest[2:]).status == "ok"
    assert security_grades([]).reason == "no_data"


def test_summary_puts_failures_first_and_counts_credentials():
    results = [CheckResult(check="audit.credentials.atlas", status="ok", summary="atlas: ok"),
               CheckResult(check="audit.credentials.stripe", status="fail", summary="stripe: credentials refused"),
               CheckResult(check="audit.uptime.home", status="warn", summary="home: 98% up"),
               CheckResult(check="audit.errors", status="skipped", summary="skipped: not configured (sentry)")]
    summary = audit_summary(results, month_before(END), END)
    lines = summary.summary.splitlines()
    assert lines[0] == "Monthly audit 2026-07-01 to 2026-08-01: 1 failing, 1 to look at, 1 ok; credentials 1/2 ok"
    assert lines[1:] == ["• [fail] stripe: credentials refused", "• [warn] home: 98% up",
                         "• [skipped] errors: not configured (sentry)"]
    assert summary.metrics["credentials_ok"] == 1 and summary.status == "warn"
