"""maintenance_monthly's full_system_audit: every configured provider's credentials (one call
each), the checks skipped for want of configuration, the month's record per check family from the
results store, and one Slack summary (the report channel). Logic: checks/audit.py; probes:
hooks/probes.py."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from maintenance.operators.base import (
    MaintenanceCheckOperator, connection_or_none, enqueue_report_once, skip_before_first_result,
)

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from datetime import datetime

    from maintenance.checks.audit import Provider
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult, ResultsStore

log = logging.getLogger(__name__)

NOTHING = ("nothing to audit: add endpoints: and the provider sections the site uses (atlas:, sentry:, stripe:, "
           "mpesa:, vercel:, storage:, email:, dependencies:, security_scan:) with their Airflow connections")


class FullSystemAuditOperator(MaintenanceCheckOperator):
    """Failing results (a credential refused) page through the base; the rest is one report."""

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.audit import audit_summary, skipped_checks, skipped_result
        from maintenance.reports.data import report_period
        from maintenance.config import Audit
        from maintenance.hooks.results_db import results_store
        from maintenance.results import CheckResult, not_configured, utcnow

        audit = config.audit or Audit()
        if not audit.enabled:
            return [not_configured("audit.full", "audit", "audit.enabled is false in the maintenance config")]
        store = results_store(config.results.conn_id)
        # The calendar month before the run, as the monthly report's: the other monthly tasks run
        # beside the audit, in any order, so this run's own results belong to next month's audit.
        start, end, _ = report_period("monthly", context.get("logical_date") or utcnow())
        skip_before_first_result(store, start, "the monthly audit")
        # Open vulnerabilities, grades and what is skipped are states: as they are when this run
        # started (this run's own scans are next month's).
        dag_run = context.get("dag_run")
        run_start = min(getattr(dag_run, "start_date", None) or utcnow(), utcnow())
        results = credential_checks(config) if audit.probe_credentials else []
        results += month_record(store, config, start, end, state_at=run_start)
        skipped = skipped_checks(store.latest_per_check(since=start, until=run_start))
        if all(r.status == "skipped" for r in results):
            how = "; ".join(f"{s['check']}: {s['how']}" for s in skipped[:10])
            return [CheckResult(check="audit.full", group="audit", status="skipped", reason="not_configured",
                                summary=f"skipped: not configured ({NOTHING})" + (
                                    f"; {len(skipped)} check(s) skipped for want of configuration: {how}" if skipped else ""),
                                evidence={"skipped_checks": skipped})]
        results.append(skipped_result(skipped, sum(1 for r in results if r.status == "skipped")))
        results.append(audit_summary(results, start, end))
        return results

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        from maintenance.hooks.results_db import results_store
        from maintenance.notifications.slack import MaintenanceNotifier

        summary = next((r for r in results if r.check == "audit.summary"), None)
        if summary is not None:
            enqueue_report_once(results_store(config.results.conn_id), summary, context, channel="report")
            if MaintenanceNotifier(channel="report", task_scoped=False).deliver(context) == 0:
                self.log.warning("the audit summary was not delivered to Slack now; it stays in the outbox "
                                 "for the next delivery")
        return super().conclude(context, config, results)


def month_record(store: ResultsStore, config: MaintenanceConfig, start: datetime, end: datetime,
                 state_at: datetime | None = None) -> list[CheckResult]:
    """The month's record per check family (start and end at UTC midnights: the report's month),
    and the newest scans before `state_at` (default: end); a family whose provider is not
    configured is skipped."""
    state_at = state_at or end
    from maintenance.checks.audit import (
        backup_record, error_trend, month_before, open_vulnerabilities, security_grades, uptime_month,
    )
    from maintenance.config import Audit
    from maintenance.reports.data import monitored, uptime_section
    from maintenance.results import not_configured, utcnow

    audit = config.audit or Audit()
    results: list[CheckResult] = []
    names = [e.name for e in config.endpoints]
    if names:
        target = audit.uptime_target_percent or config.uptime.target_percent
        section = uptime_section(store, monitored(config), start, end, utcnow(), target)
        existed = {name for name, first in store.first_seen(names).items() if first <= start}
        results += uptime_month(section["endpoints"], existed=existed, target_percent=target)
    else:
        results.append(not_configured("audit.uptime", "audit", "add endpoints: to the maintenance config"))
    if config.sentry is not None and config.sentry.enabled:
        rows = store.period(month_before(start), end, prefixes=["sentry."])
        results.append(error_trend([r for r in rows if r["checked_at"] >= start],
                                   [r for r in rows if r["checked_at"] < start], audit.error_trend_factor))
    else:
        results.append(not_configured("audit.errors", "audit", "add a sentry: section and the sentry_api connection"))
    if (config.atlas is not None and config.atlas.enabled) or (config.storage is not None and config.storage.buckets):
        results.append(backup_record(store.period(start, end, prefixes=["atlas.", "storage."]),
                                     existed=bool(store.latest_per_check(until=start, prefixes=["atlas.", "storage."]))))
    else:
        results.append(not_configured("audit.backups", "audit", "add an atlas: section or storage: buckets:"))
    if config.dependencies is not None and config.dependencies.enabled:
        results.append(open_vulnerabilities(store.latest_per_check(until=state_at, prefixes=["dependencies.vulnerabilities."])))
    else:
        results.append(not_configured("audit.vulnerabilities", "audit", "add a dependencies: section"))
    if config.security_scan is not None and config.security_scan.enabled:
        results.append(security_grades(store.latest_per_check(until=state_at, prefixes=["security.headers.",
                                                                                  "security.tls."])))
    else:
        results.append(not_configured("audit.security", "audit", "add a security_scan: section"))
    return results


def credential_checks(config: MaintenanceConfig) -> list[CheckResult]:
    """One credential probe per configured provider; a provider whose connection is missing is
    skipped, saying which connection to add."""
    from functools import cache

    from maintenance.checks.audit import configured_providers, missing_connection

    connection_of = cache(connection_or_none)   # each connection is fetched once per audit
    mongo = tuple(c for c in dict.fromkeys(
        ["mongo_default"] + ([config.security_logs.mongo_conn_id] if config.security_logs else []))
        if connection_of(c) is not None)
    providers = configured_providers(config, mongo)
    if not providers:
        from maintenance.results import not_configured

        return [not_configured("audit.credentials", "audit", "no provider is configured: add its section and "
                                                              "Airflow connection")]
    results = []
    for provider in providers:
        connection = connection_of(provider.conn_id)
        if connection is None:
            results.append(missing_connection(provider))
            continue
        results.append(probe_one(provider, connection))
    return results


def probe_one(provider: Provider, connection: Any) -> CheckResult:
    """One call; whatever happens becomes a classified result (one bad probe never stops the rest)."""
    from maintenance.checks.audit import credential_result
    from maintenance.hooks.http_policy import INTERNAL, ProviderError, redact
    from maintenance.hooks.probes import probe
    from maintenance.operators.base import mask_secrets

    mask_secrets(connection.password or "")
    try:
        return credential_result(provider, probe(provider.kind, provider.conn_id, provider.target))
    except ProviderError as exc:
        return credential_result(provider, None, exc.reason, str(exc))
    except Exception as exc:  # noqa: BLE001 - a probe's own bug is a finding, not a crash of the audit
        log.exception("credential probe of %s failed unexpectedly", provider.name)
        return credential_result(provider, None, INTERNAL,
                                 redact(f"{type(exc).__name__}: {exc}", [connection.password])[:200])
