"""maintenance_daily's 'monitor error logs': the Sentry review."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maintenance.operators.base import MaintenanceCheckOperator, connection_or_none

if TYPE_CHECKING:
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class SentryReviewOperator(MaintenanceCheckOperator):
    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.errors import critical_errors, error_rate, new_issues
        from maintenance.hooks.http_policy import ProviderError
        from maintenance.hooks.sentry import SentryHook
        from maintenance.results import CheckResult, not_configured

        sentry = config.sentry
        if sentry is None or not sentry.enabled:
            return [not_configured("sentry.errors", "errors", "add a sentry: section and the sentry_api connection")]
        if connection_or_none(sentry.conn_id) is None:
            return [not_configured("sentry.errors", "errors", f"set Airflow connection '{sentry.conn_id}' "
                                   "(password = auth token; extra: organization)")]
        hook = SentryHook(sentry.conn_id)
        results = []
        for name, run in (
            ("sentry.critical_errors", lambda: critical_errors(hook.issues("is:unresolved level:fatal"))),
            ("sentry.new_issues", lambda: new_issues(hook.issues("is:unresolved firstSeen:-24h"),
                                                     sentry.max_new_issues_per_day)),
            ("sentry.error_rate", lambda: error_rate(hook.hourly_errors(), sentry.error_spike_factor,
                                                     sentry.min_errors_per_hour)),
        ):
            try:
                results.append(run())
            except ProviderError as exc:
                results.append(CheckResult(check=name, group="errors", status="fail", reason=exc.reason,
                                           summary=str(exc), provider="sentry", runbook="maintenance_daily"))
            except Exception as exc:  # noqa: BLE001 - one surprise never takes the other checks down
                self.log.exception("%s: unexpected error", name)
                results.append(CheckResult(check=name, group="errors", status="fail", reason="internal_error",
                                           summary=f"internal error while checking ({type(exc).__name__})",
                                           provider="sentry", runbook="maintenance_daily"))
        return results
