"""uptime_monitor's operators: one task sweeps every endpoint concurrently (plus the payment
providers' APIs), one cross-checks the external monitors; and the daily uptime report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Sequence

from maintenance.operators.base import WATCHER_CHECK, MaintenanceCheckOperator, connection_or_none, mask_secrets

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

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from maintenance.triggers.uptime_watch import watcher_events

        events = watcher_events(context)
        if events is None:
            return super().execute(context)   # the 5-minute run (or a manual one): the full sweep
        from maintenance.config import get_config

        return announce(self, context, get_config(), events)

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
        if not self.groups and config.uptime.watch_interval:
            results.append(watcher_check(config))
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



def watcher_check(config: MaintenanceConfig) -> CheckResult:
    """Whether the watcher in the triggerer still sweeps: its newest sample is at most 3 intervals old.

    The first run that finds no sample at all only warns (a new install: the triggerer has not
    loaded the watcher yet); the next one, 5 minutes on, fails. It pages on its first failed run
    (MaintenanceCheckOperator.immediate) and recovers when samples flow again.
    """
    from maintenance.hooks.results_db import results_store
    from maintenance.results import CheckResult, utcnow
    from maintenance.triggers.uptime_watch import SWEEP_PREFIX, stale_after

    from maintenance.durations import format_duration

    now = utcnow()
    interval = config.uptime.watch_interval
    limit = stale_after(interval.total_seconds())
    watched = [e.name for e in config.endpoints if e.login is None]
    common = dict(check=WATCHER_CHECK, group="uptime", runbook="uptime_monitor",
                  metrics={"interval_s": interval.total_seconds()})
    if not watched:
        return CheckResult(status="skipped", summary="no endpoint without a login flow: nothing to watch", **common)
    store = results_store(config.results.conn_id)
    newest = store.newest_sample(watched, now - timedelta(days=7), SWEEP_PREFIX)
    if newest is not None and now - newest <= limit:
        return CheckResult(status="ok", summary=f"the watcher swept {format_duration((now - newest).total_seconds())} "
                                                f"ago (every {format_duration(interval.total_seconds())})", **common)
    causes = ("the triggerer is down (start `airflow triggerer`), the trigger is crashing (see the "
              "triggerer's log: 'uptime watcher'), or uptime_monitor is paused (pausing removes the watcher)")
    if newest is None:
        seen = store.latest(WATCHER_CHECK)
        first_look = seen is None or now - _aware(seen["checked_at"]) < limit
        summary = f"no sample from the watcher in 7 days: {causes}"
        if first_look:
            return CheckResult(status="warn", reason="watcher_not_started",
                               summary="no sample from the watcher yet; it starts once the DAG processor has "
                                       "registered it and the triggerer has loaded it", **common)
        return CheckResult(status="fail", reason="watcher_silent", summary=summary, **common)
    age = format_duration((now - newest).total_seconds())
    return CheckResult(status="fail", reason="watcher_silent",
                       summary=f"the watcher's newest sample is {age} old (more than 3 intervals of "
                               f"{format_duration(interval.total_seconds())}): {causes}", **common)


def _aware(value: Any) -> Any:
    from datetime import timezone

    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def announce(operator: MaintenanceCheckOperator, context: Any, config: MaintenanceConfig,
             events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An asset-triggered run: deliver the alerts and recoveries the watcher put in the outbox (the
    watcher already stored the results and moved the alert states), start the runbooks of the
    incidents that opened, and fail while one of them is still open (red, so the heartbeat's
    /fail ping follows as for a 5-minute run)."""
    from maintenance.alerting import Assessment, ChecksFailed, Due
    from maintenance.hooks.results_db import results_store
    from maintenance.notifications.slack import MaintenanceNotifier
    from maintenance.operators.runbook_start import start_runbooks
    from maintenance.results import CheckResult

    store = results_store(config.results.conn_id)
    ti = context["ti"]
    dues = []
    for event in events:
        for change in event.get("changes") or []:
            result = CheckResult(check=change["check"], status=change["status"], summary=change["summary"],
                                 target=change.get("target") or "", group=change.get("group") or "",
                                 reason=change.get("reason"), runbook=change.get("runbook"),
                                 provider=change.get("provider"), critical=bool(change.get("critical", True)),
                                 time=datetime.fromisoformat(change["checked_at"]))
            since = datetime.fromisoformat(change["failing_since"]) if change.get("failing_since") else None
            dues.append(Due(change["kind"], result, int(change.get("failures") or 0), since, change.get("outbox_id")))
            operator.log.info("watcher sweep %s%s: %s %s: %s", event.get("sweep"),
                              " (replayed after a triggerer restart)" if event.get("replayed") else "",
                              result.check, "FAILING" if change["kind"] == "alert" else "RECOVERED", result.summary)
    # The message names this run and links its log (the watcher's sweep has no task log).
    where = {"run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number, "log_url": ti.log_url}
    waiting = store.pending_among(d.outbox_id for d in dues if d.outbox_id is not None)
    for outbox_id in waiting:
        store.extend_payload(outbox_id, where)
    # Runbooks: only for incidents still waiting to be told (an alert cancelled by a recovery
    # before delivery never opened for anyone); the start is once per incident (its run id).
    opened = [d for d in dues if d.kind == "alert" and d.outbox_id in waiting]
    if opened:
        start_runbooks(store, config, Assessment(due=opened), context)
    # The watcher's messages are every sender's to take (ResultsStore.claim): this run's, or the
    # next 5-minute run's if this one could not reach Slack.
    MaintenanceNotifier().deliver(context)
    states = store.alert_states([d.result.check for d in dues], alerting=True)
    still_open = [d.result for d in dues if d.result.check in states and d.kind == "alert"]
    if still_open:
        raise ChecksFailed(list({r.check: r for r in still_open}.values()))
    return [{"check": d.result.check, "kind": d.kind, "status": d.result.status} for d in dues]


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

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from maintenance.triggers.uptime_watch import watcher_events

        if watcher_events(context) is not None:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("a run started by the uptime watcher delivers its alerts only; "
                                       "the cross-check runs with the 5-minute sweep")
        return super().execute(context)

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
        # issue 16: the watcher stores a result per endpoint every 30 s; past raw_retention_days only
        # the roll-ups stay (a day not rolled up keeps its raw rows)
        keep = timedelta(days=config.results.raw_retention_days)
        pruned = store.prune_raw(keep, now)
        self.log.info("results store: %d raw result(s) older than %s deleted (their days are rolled up)", pruned,
                      f"{keep.days} days")
        return uptime_report(rows, [e.name for e in config.endpoints], now=now,
                             target_percent=config.uptime.target_percent)
