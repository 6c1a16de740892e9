"""The analytics tasks of maintenance_weekly and maintenance_monthly: traffic (Plausible or GA4)
and the app's own figures (MongoDB), stored as results that the period's report shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maintenance.operators.base import MaintenanceCheckOperator, connection_or_none
from maintenance.operators.review import ReviewOperator

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


def _period(kind: str, context: Any) -> tuple[Any, Any]:
    from maintenance.reports.data import report_period
    from maintenance.results import utcnow

    start, end, _ = report_period(kind, context.get("logical_date") or utcnow())
    return start, end


class TrafficAnalyticsOperator(MaintenanceCheckOperator):
    """Visitors, page views, bounce rate, visit duration, top pages and sources, goals and events
    of the report's period against the period before: Plausible when configured, else GA4."""

    ui_color = "#eaf7ef"

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        start, end = _period(self.kind, context)
        return traffic_analytics(config, self.kind, start, end, runbook=context["dag"].dag_id)


def traffic_analytics(config: MaintenanceConfig, kind: str, start: Any, end: Any,
                      runbook: str | None = None) -> list[CheckResult]:
    from maintenance.checks.analytics import from_ga4, from_plausible, ga4_requests, plausible_queries
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.results import CheckResult, not_configured

    check = f"analytics.{kind}.traffic"
    analytics = config.analytics
    plausible = analytics.plausible if analytics and analytics.plausible and analytics.plausible.enabled else None
    ga4 = analytics.ga4 if analytics and analytics.ga4 and analytics.ga4.enabled else None
    if plausible is None and ga4 is None:
        return [not_configured(check, "analytics", "add analytics.plausible (connection plausible_api) or "
                                                   "analytics.ga4 (connection ga4_api) to the config")]
    section = plausible or ga4
    assert section is not None
    if connection_or_none(section.conn_id) is None:
        return [not_configured(check, "analytics", f"set Airflow connection '{section.conn_id}'")]
    try:
        if plausible is not None:
            from maintenance.hooks.analytics import PlausibleHook

            hook = PlausibleHook(plausible.conn_id)
            queries = plausible_queries(plausible.site_id, start, end, plausible.top)
            answers = {name: hook.query(body) for name, body in queries.items()}
            return [from_plausible(kind, start, end, answers, queries)]
        from maintenance.hooks.analytics import GA4Hook

        assert ga4 is not None
        ga4_hook = GA4Hook(ga4.conn_id)
        answers = {name: ga4_hook.run_report(ga4.property_id, body)
                   for name, body in ga4_requests(start, end, ga4.top).items()}
        return [from_ga4(kind, start, end, answers)]
    except ProviderError as exc:
        return [CheckResult(check=check, group="analytics", status="fail", reason=exc.reason, critical=False,
                            provider="plausible" if plausible else "ga4", summary=str(exc), runbook=runbook)]


class AppAnalyticsOperator(ReviewOperator):
    """Membership signups, donations per currency (refunds apart), event registrations and admin
    actions from the app's MongoDB, against the period before. An anomaly is a warn result,
    summarised in the daily digest (ReviewOperator); a database failure pages."""

    ui_color = "#eaf7ef"

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        start, end = _period(self.kind, context)
        return app_analytics(config, self.kind, start, end, runbook=context["dag"].dag_id)


def app_analytics(config: MaintenanceConfig, kind: str, start: Any, end: Any,
                  runbook: str | None = None) -> list[CheckResult]:
    from maintenance.checks.analytics import app_pipelines, app_result
    from maintenance.hooks.mongo import aggregate
    from maintenance.results import CheckResult, not_configured

    app = config.analytics.app if config.analytics else None
    pipelines = app_pipelines(app, start, end) if app is not None else {}
    if not pipelines:
        return [not_configured(f"analytics.{kind}.app", "analytics",
                               "add analytics.app (database, and the signups/donations/registrations/"
                               "admin_actions collections) and the mongo connection")]
    assert app is not None
    if connection_or_none(app.conn_id) is None:
        return [not_configured(f"analytics.{kind}.app", "analytics", f"set Airflow connection '{app.conn_id}'")]
    results = []
    for metric, groups in aggregate(app.conn_id, app.database, pipelines).items():
        if isinstance(groups, Exception):
            results.append(CheckResult(check=f"analytics.{kind}.{metric}", group="analytics", status="fail",
                                       reason=getattr(groups, "reason", "mongo_error"), critical=False,
                                       provider="app", summary=str(groups), runbook=runbook))
        else:
            result = app_result(kind, metric, groups, app, start, end)
            result.runbook = runbook
            results.append(result)
    return results
