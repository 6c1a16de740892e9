"""maintenance_weekly's review_performance_metrics and maintenance_monthly's
performance_optimization_review: Core Web Vitals, our probes' trend, Vercel deployments."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from maintenance.operators.base import connection_or_none
from maintenance.operators.review import ReviewOperator

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult

PERIODS = {"week": (timedelta(days=7), 1), "month": (timedelta(days=28), 4)}   # (length, CrUX weekly periods)


class PerformanceReviewOperator(ReviewOperator):
    def __init__(self, *, period: str = "week", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if period not in PERIODS:
            raise ValueError(f"period must be one of {sorted(PERIODS)}")
        self.period = period

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.results import utcnow

        runbook = context["dag"].dag_id
        length, step = PERIODS[self.period]
        now = utcnow()
        deployments, results = vercel_checks(config, now - length, now, self.period, runbook)
        results += web_vitals(config, step, runbook)
        results += probes(config, now, length, self.period, deployments, runbook)
        return results


def vercel_checks(config: MaintenanceConfig, since: Any, until: Any, period: str,
                  runbook: str) -> tuple[list[dict[str, Any]], list[CheckResult]]:
    from maintenance.results import CheckResult, not_configured

    from maintenance.checks.performance import deployments_result
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.vitals import VercelHook

    check = "performance.vercel.deployments"
    conn = config.vercel.conn_id if config.vercel else "vercel_api"
    if config.vercel is None or not config.vercel.enabled or connection_or_none(conn) is None:
        return [], [not_configured(check, "performance", f"add a vercel: section and the Airflow connection '{conn}' "
                                   "(http: password = token; extra: team_id, project_id)")]
    hook = VercelHook(conn)
    try:
        deployments = hook.deployments(int(since.timestamp() * 1000), int(until.timestamp() * 1000))
        return deployments, [deployments_result(deployments, hook.current_production(), period, runbook,
                                                verdicts=deploy_verdicts(config))]
    except ProviderError as exc:
        return [], [CheckResult(check=check, group="performance", status="fail", reason=exc.reason, provider="vercel",
                                runbook=runbook, summary=f"Vercel deployments could not be read: {exc}")]


def deploy_verdicts(config: MaintenanceConfig) -> dict[str, str]:
    """post_deploy_verification's verdicts (issue 19), by deployment uid: healthy, regressed, build_error."""
    from maintenance.hooks.results_db import results_store
    from maintenance.operators.deploys import verdicts

    return {(row["evidence"] or {}).get("uid"): row["reason"]
            for row in verdicts(results_store(config.results.conn_id))[::-1]}


def web_vitals(config: MaintenanceConfig, step: int, runbook: str) -> list[CheckResult]:
    from maintenance.results import CheckResult, not_configured

    from maintenance.checks.performance import CRUX_NAMES, crux_metrics, cwv_result, history_p75s, psi_metrics
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.vitals import CruxHook, PsiHook

    perf = config.performance
    if perf is None or not perf.enabled:
        return [not_configured("performance.cwv", "performance", "add a performance: section (origins, pages) and "
                               "the Airflow connection 'crux_api' (password = Google API key)")]
    if connection_or_none(perf.crux_conn_id) is None:
        return [not_configured("performance.cwv", "performance", f"set Airflow connection '{perf.crux_conn_id}' "
                               "(http: password = a Google API key with the Chrome UX Report API enabled)")]
    crux = CruxHook(perf.crux_conn_id)
    psi = PsiHook(perf.psi_conn_id, key=crux.key)
    results = []
    targets = [("origin", o) for o in (perf.origins or [config.site.url])] + [("url", u) for u in perf.pages]
    for kind, target in targets:
        body: dict[str, Any] = {kind: target, "metrics": list(CRUX_NAMES.values())}
        if perf.form_factor != "ALL":
            body["formFactor"] = perf.form_factor
        try:
            record = crux.record(body)
            if record is not None:
                history = crux.history({**body, "collectionPeriodCount": perf.history_periods})
                results.append(cwv_result(target, crux_metrics(record), "CrUX", history_p75s(history), step, runbook))
            else:   # no CrUX record: PageSpeed Insights' field data (origin-level when the URL has none)
                strategy = "DESKTOP" if perf.form_factor == "DESKTOP" else "MOBILE"
                results.append(cwv_result(target, psi_metrics(psi.run(target, strategy)), "PSI", None, step, runbook))
        except ProviderError as exc:
            results.append(CheckResult(check=f"performance.cwv.{target.split('://', 1)[-1].rstrip('/')}",
                                       target=target, group="performance", status="fail", reason=exc.reason,
                                       runbook=runbook, summary=f"Core Web Vitals could not be read: {exc}"))
    return results


def probes(config: MaintenanceConfig, now: Any, length: timedelta, period: str, deployments: list[dict[str, Any]],
           runbook: str) -> list[CheckResult]:
    from maintenance.results import not_configured

    from maintenance.checks.performance import probe_review
    from maintenance.hooks.results_db import results_store

    if not config.endpoints:
        return [not_configured("performance.probe", "performance", "add endpoints: to the maintenance config "
                               "(uptime_monitor's probes are the response-time source)")]
    perf = config.performance
    store = results_store(config.results.conn_id)
    names = [e.name for e in config.endpoints]
    mine = store.period(now - 2 * length, checks=names)   # one query for every endpoint
    this = [r for r in mine if r["checked_at"] >= now - length]
    last = [r for r in mine if r["checked_at"] < now - length]
    return probe_review(this, last, names, factor=perf.regression_factor if perf else 1.5,
                        min_samples=perf.min_probe_samples if perf else 10, slowest=perf.slowest if perf else 3,
                        period=period, deployments=deployments, runbook=runbook)
