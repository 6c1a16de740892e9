"""uptime_monitor's operators: one task sweeps every endpoint concurrently (plus the payment
providers' APIs), one cross-checks the external monitors; and the daily uptime report."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Sequence

from maintenance.operators.base import MaintenanceCheckOperator, connection_or_none, mask_secrets

if TYPE_CHECKING:
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class UptimeCheckOperator(MaintenanceCheckOperator):
    """Check the configured endpoints (optionally only some groups) against their conditions."""

    uses_failure_threshold = True
    reports_every_check = True
    reports_config = True
    template_fields: Sequence[str] = ("groups",)

    def __init__(self, *, groups: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups = groups

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.uptime import sweep  # aiohttp: not at DAG-parse time
        from maintenance.results import not_configured

        endpoints = [e for e in config.endpoints if not self.groups or e.group in self.groups]
        if not endpoints:
            return [not_configured("uptime.endpoints", "uptime", "add endpoints: to the maintenance config")]
        credentials = {}
        for endpoint in endpoints:
            if endpoint.login and (conn := connection_or_none(endpoint.login.conn_id)):
                credentials[endpoint.name] = (conn.login or "", conn.password or "")
        mask_secrets(*(s for e in endpoints for s in e.secrets),
                     *(s for pair in credentials.values() for s in (*pair, ":".join(pair))))
        results = sweep(endpoints, config.uptime.concurrency, config.uptime.user_agent,
                        credentials=credentials, ca_file=config.uptime.ca_file, body_limit=config.uptime.body_limit)
        if not self.groups or "payments" in self.groups:
            results += payment_provider_checks(config)
        return results

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        try:
            return super().conclude(context, config, results)
        finally:   # stored and alerted first; the public page (opt-in) shows this run, paging or not
            publish_public_page(config, self.log)


def publish_public_page(config: MaintenanceConfig, log: Any) -> str | None:
    """Write status_page.public's page; its location, or None (not configured, or not written: a
    warning in the task log, never the task's failure)."""
    settings = config.status_page.public
    if settings is None:
        return None
    from maintenance.hooks.results_db import results_store
    from maintenance.reports.public import bucket_and_prefix, public_page, storage_conn_id, write_public_page
    from maintenance.results import utcnow

    try:
        html = public_page(results_store(config.results.conn_id), config, utcnow())
        client = None
        if settings.publish_to.startswith("s3://"):
            from maintenance.hooks.storage import s3_client

            client = s3_client(storage_conn_id(config, bucket_and_prefix(settings.publish_to)[0]))
        where = write_public_page(html, settings.publish_to, client)
    except OSError as exc:
        log.warning("public status page not written to %s: %s", settings.publish_to, exc.strerror or exc)
        return None
    except Exception as exc:  # noqa: BLE001 - storage errors are classified, never raised into the sweep
        from maintenance.hooks.storage import client_error

        log.warning("public status page not written to %s: %s", settings.publish_to, client_error(exc)[1])
        return None
    log.info("public status page written to %s (%d bytes)", where, len(html))
    return where


def payment_provider_checks(config: MaintenanceConfig) -> list[CheckResult]:
    """Reachability of Stripe's API and Daraja's OAuth, as separate results in group payments."""
    from maintenance.checks.external import judge_daraja_token, judge_stripe_balance, provider_call
    from maintenance.hooks.payments import DarajaHook, StripeApiHook
    from maintenance.results import not_configured

    results = []
    for section, hook_class, call, judge, check, provider in (
        (config.stripe, StripeApiHook, "balance", judge_stripe_balance, "payments.stripe_api", "stripe"),
        (config.mpesa, DarajaHook, "oauth_token", judge_daraja_token, "payments.daraja_oauth", "mpesa"),
    ):
        if section is None or not section.enabled:
            continue
        if connection_or_none(section.conn_id) is None:
            results.append(not_configured(check, "payments", f"set Airflow connection '{section.conn_id}'"))
            continue
        hook = hook_class(section.conn_id)
        results.append(provider_call(check, "payments", provider, "runbook_payments", getattr(hook, call), judge))
    return results


class ExternalMonitorsOperator(MaintenanceCheckOperator):
    """UptimeRobot and Pingdom monitors: down, paused, or disagreeing with our own latest result."""

    uses_failure_threshold = True

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.external import cross_check, from_pingdom, from_uptimerobot
        from maintenance.hooks.http_policy import ProviderError
        from maintenance.hooks.monitors import PingdomHook, UptimeRobotHook
        from maintenance.hooks.results_db import results_store
        from maintenance.results import CheckResult, not_configured, utcnow

        store = results_store(config.results.conn_id)
        latest: dict[str, str] = {}
        for row in store.history(since=utcnow() - timedelta(minutes=30)):
            latest[row["check_name"]] = row["status"]
        own = {e.url: (e.name, latest[e.name]) for e in config.endpoints if e.name in latest}
        results: list[CheckResult] = []
        for section, hook_class, fetch, convert, check in (
            (config.uptimerobot, UptimeRobotHook, "monitors", from_uptimerobot, "external.uptimerobot"),
            (config.pingdom, PingdomHook, "checks", from_pingdom, "external.pingdom"),
        ):
            if section is None or not section.enabled:
                continue
            if connection_or_none(section.conn_id) is None:
                results.append(not_configured(check, "uptime", f"set Airflow connection '{section.conn_id}'"))
                continue
            try:
                monitors = [convert(m) for m in getattr(hook_class(section.conn_id), fetch)()]
            except ProviderError as exc:
                results.append(CheckResult(check=check, group="uptime", status="fail", reason=exc.reason,
                                           summary=str(exc), runbook="uptime_monitor"))
                continue
            results += cross_check(monitors, own)
        if not results:
            results.append(not_configured("external.monitors", "uptime",
                                          "add an uptimerobot: or pingdom: section and its connection"))
        return results


class UptimeReportOperator(MaintenanceCheckOperator):
    """maintenance_daily's 'check uptime status': uptime % and incidents per endpoint, last 24 h."""

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.uptime_report import uptime_report
        from maintenance.hooks.results_db import results_store
        from maintenance.results import utcnow

        now = utcnow()
        store = results_store(config.results.conn_id)
        rows = store.history(since=now - timedelta(hours=24))
        # issue 12: roll up the finished days now, so the status page's first visit of the day does not
        rolled = store.roll_up(now.date() - timedelta(days=config.reports.status_page_days), now)
        self.log.info("results store: %d finished day(s) rolled up for the status page and reports", rolled)
        return uptime_report(rows, [e.name for e in config.endpoints], now=now,
                             target_percent=config.uptime.target_percent)
