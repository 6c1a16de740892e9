"""post_deploy_verification's operators (issue 19).

verify_endpoints: the deployments this run is about (the watcher's events, or the `deployment_id`
param; without one, the newest production deployment). ERROR: one alert at once (build error
line, what production still serves). READY: the critical endpoints swept against production (and
the deployment's own URL when vercel.check_deployment_url); a failing endpoint is probed once more
after post_deploy.recheck_after, and if it still fails the verdict is REGRESSED at once, without
waiting for the observe window (auto_rollback acts here).
observe_sentry: defers (DateTimeTrigger, in the triggerer: no worker sleeps) until
post_deploy.observe_for after the deploy, then reads Sentry (issues first seen in the release,
error events in the window after against the window before) and sends one verdict per deployment.

A deployment is verified once: its stored verdict (deploy.verdict in the results store) is the
key, so an event announced twice (a triggerer killed between yield and memory) changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from maintenance.notifications.slack import MaintenanceNotifier

if TYPE_CHECKING:
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult, ResultsStore

VERDICT_LOOKBACK = timedelta(days=90)


def deployments_of_run(context: Any, hook: Any) -> list[dict[str, Any]]:
    """The watcher's event payloads this run consumed, else the deployment named by the param."""
    from maintenance.checks.deploys import facts
    from maintenance.triggers.vercel_deployments import ASSET_NAME

    try:
        from airflow.sdk import Asset

        consumed = list(context["triggering_asset_events"][Asset(name=ASSET_NAME)])
    except (KeyError, TypeError, LookupError):
        consumed = []
    payloads = [(e.extra or {}).get("payload") for e in sorted(consumed, key=lambda e: e.timestamp)]
    payloads = [p for p in payloads if isinstance(p, dict) and p.get("uid")]
    if payloads:
        return payloads
    wanted = (context.get("params") or {}).get("deployment_id")
    if wanted:
        return [facts(hook.deployment(str(wanted)))]
    newest = hook.newest_production(1)
    return [facts(newest[0])] if newest else []


def verdicts(store: ResultsStore, uids: list[str] | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Stored verdicts, newest first (optionally of some deployments, or of one status)."""
    from maintenance.checks.deploys import VERDICT_CHECK
    from maintenance.results import utcnow

    rows = store.history(check=VERDICT_CHECK, since=utcnow() - VERDICT_LOOKBACK)
    rows = [r for r in rows if (uids is None or (r["evidence"] or {}).get("uid") in uids)
            and (status is None or r["status"] == status)]
    return rows[::-1]


def publish(store: ResultsStore, result: CheckResult, context: Any, channel: str) -> None:
    """Store a deploy result and put its message in the outbox, in one transaction."""
    from maintenance.alerting.assess import ti_fields

    fields = ti_fields(context)
    payload = {"kind": "deploy", "check": result.check, "target": result.target, "group": result.group,
               "status": result.status, "summary": result.summary, "reason": result.reason,
               "runbook": result.runbook, "provider": result.provider, "checked_at": result.time.isoformat(),
               "metrics": result.metrics, **fields}
    with store.transaction() as conn:
        store.record([result], dag_id=fields.get("dag_id"), run_id=fields.get("run_id"),
                     task_id=fields.get("task_id"), try_number=fields.get("try_number"), conn=conn)
        store.enqueue(conn, kind="deploy", payload=payload, check=result.check, channel=channel,
                      dag_id=fields.get("dag_id"), run_id=fields.get("run_id"), task_id=fields.get("task_id"))


class _DeployStep(BaseOperator):
    ui_color = "#fdf1e8"

    def _setup(self) -> tuple[MaintenanceConfig, ResultsStore, Any]:
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store
        from maintenance.hooks.vitals import VercelHook
        from maintenance.operators.base import connection_or_none

        config = get_config()
        section = config.vercel
        if section is None or not section.enabled or connection_or_none(section.conn_id) is None:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("no vercel section (enabled) or no Airflow connection "
                                       f"'{section.conn_id if section else 'vercel_api'}': nothing to verify")
        return config, results_store(config.results.conn_id), VercelHook(section.conn_id)

    def _deliver(self, context: Any) -> None:
        notifier = MaintenanceNotifier()
        notifier.deliver(context)
        MaintenanceNotifier("report").deliver(context)

    def regressed(self, config: MaintenanceConfig, store: ResultsStore, hook: Any, context: Any,
                  deployment: dict[str, Any], endpoint_failures: list[CheckResult], sentry: Any,
                  sentry_problems: list[str]) -> CheckResult:
        """The REGRESSED verdict with the way back (and, opt-in, the rollback done), published."""
        from maintenance.checks.deploys import rollback_advice, verdict

        previous, verified = way_back(store, hook, deployment)
        action = ""
        if config.post_deploy.auto_rollback:
            action = auto_rollback(store, hook, context, deployment, previous if verified else None)
        result = verdict(deployment, endpoint_failures=endpoint_failures, sentry=sentry,
                         sentry_problems=sentry_problems, way_back=rollback_advice(previous, verified), action=action)
        publish(store, result, context, "now")
        self.log.info("%s", result.summary)
        return result


def way_back(store: ResultsStore, hook: Any, deployment: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(the deployment to go back to, whether this project verified it healthy). The newest
    healthy verdict of an older deployment; else Vercel's previous READY production deployment,
    named as unverified (auto-rollback never takes it)."""
    from maintenance.checks.deploys import FINAL, facts

    for row in verdicts(store, status="ok"):
        evidence = row["evidence"] or {}
        if evidence.get("uid") != deployment["uid"] and int(evidence.get("created") or 0) < deployment["created"]:
            return dict(evidence), True
    try:
        older = [facts(d) for d in hook.newest_production(20)]
    except Exception:  # noqa: BLE001 - the advice is best effort; the verdict still goes out
        return None, False
    older = [d for d in older if d["state"] == FINAL[0] and d["created"] < deployment["created"]]
    return (older[0], False) if older else (None, False)


def auto_rollback(store: ResultsStore, hook: Any, context: Any, deployment: dict[str, Any],
                  target: dict[str, Any] | None) -> str:
    """Roll production back to `target` (a verified deployment), at most once per deployment.
    The attempt is stored before the call, so a retry of the task never calls twice; a refused
    or failed rollback is an alert of its own."""
    from maintenance.checks.deploys import GROUP, ROLLBACK_CHECK
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.results import CheckResult, utcnow

    uid = deployment["uid"]
    tried = [r for r in store.history(check=ROLLBACK_CHECK, since=utcnow() - VERDICT_LOOKBACK)
             if (r["evidence"] or {}).get("uid") == uid]
    if tried:
        return f"auto-rollback: already attempted for {uid} ({tried[-1]['summary']}); not repeated"
    if target is None:
        return "auto-rollback NOT done: no earlier deployment was verified healthy by this project"
    common = dict(check=ROLLBACK_CHECK, group=GROUP, target=deployment.get("url") or "", provider="vercel",
                  runbook="post_deploy_verification", evidence={"uid": uid, "to": target["uid"]})
    from maintenance.alerting.assess import ti_fields

    fields = ti_fields(context)
    store.record([CheckResult(status="warn", reason="rollback_started",
                              summary=f"rolling back {uid} to {target['uid']}", **common)],
                 dag_id=fields.get("dag_id"), run_id=fields.get("run_id"), task_id=fields.get("task_id"))
    try:
        hook.rollback(target["uid"], f"post_deploy_verification: {uid} regressed")
    except ProviderError as exc:
        failed = CheckResult(status="fail", reason=exc.reason,
                             summary=f"auto-rollback of {uid} to {target['uid']} FAILED: {exc}. Roll back by hand: "
                                     f"`vercel rollback {target['uid']}`", **common)
        publish(store, failed, context, "now")
        return f"auto-rollback to {target['uid']} FAILED ({exc.reason}): see the rollback alert"
    publish(store, CheckResult(status="ok", reason="rolled_back",
                               summary=f"production rolled back from {uid} to {target['uid']}", critical=False,
                               **common), context, "report")
    return f"auto-rollback DONE: production now serves {target['uid']} (verified healthy)"


def deploy_endpoints(config: MaintenanceConfig, deployment: dict[str, Any], bypass: str) -> list[Any]:
    """The endpoints swept after a deploy, against production and (opt-in) the deployment's URL."""
    from urllib.parse import urlsplit, urlunsplit

    from maintenance.config import Endpoint

    chosen = config.post_deploy.endpoints
    base = [e for e in config.endpoints
            if (e.name in chosen if chosen else e.critical) and e.login is None]
    swept = [Endpoint.model_validate({**e.model_dump(), "name": f"deploy:{e.name}"}) for e in base]
    if config.vercel and config.vercel.check_deployment_url and deployment.get("url"):
        own = urlsplit(deployment["url"])
        for e in base:
            parts = urlsplit(e.url)
            headers = {**e.headers, **({"x-vercel-protection-bypass": bypass} if bypass else {})}
            swept.append(Endpoint.model_validate({**e.model_dump(), "name": f"deploy-url:{e.name}", "headers": headers,
                                                  "url": urlunsplit((own.scheme or "https", own.netloc, parts.path,
                                                                     parts.query, ""))}))
    return swept


class VerifyEndpointsOperator(_DeployStep):
    """ERROR: alert at once. READY: the endpoints now; REGRESSED at once if one stays broken."""

    def execute(self, context: Any) -> list[dict[str, Any]]:
        import time

        from maintenance.checks.deploys import build_error_line, build_failed, facts
        from maintenance.checks.uptime import sweep
        from maintenance.hooks.http_policy import ProviderError
        from maintenance.operators.base import mask_secrets
        from maintenance.results import utcnow

        config, store, hook = self._setup()
        to_observe = []
        try:
            deployments = deployments_of_run(context, hook)
        except ProviderError as exc:   # a mistyped id by hand (404), a refused token: said once, not retried
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"the deployment to verify could not be read from Vercel: {exc}") from None
        for deployment in deployments:
            uid = deployment["uid"]
            if verdicts(store, [uid]):
                self.log.info("%s: verified already (its verdict is stored); not again", uid)
                continue
            if deployment["state"] == "ERROR":
                try:
                    line = build_error_line(hook.events(uid), deployment)
                except ProviderError as exc:
                    line = deployment.get("error") or f"(build log not read: {exc})"
                try:
                    serving = hook.serving_production()
                except ProviderError as exc:
                    self.log.warning("what production serves could not be read: %s", exc)
                    serving = None
                result = build_failed(deployment, line, facts(serving) if serving else None)
                publish(store, result, context, "now")
                self.log.info("%s", result.summary)
                continue
            if deployment["state"] != "READY":
                self.log.info("%s is %s: nothing to verify yet", uid, deployment["state"])
                continue
            other = started_by_another_run(store, uid, context)
            if other:
                self.log.info("%s is being verified by run %s already; not twice", uid, other)
                continue
            bypass = hook.protection_bypass
            mask_secrets(bypass)
            endpoints = deploy_endpoints(config, deployment, bypass)
            uptime = config.uptime
            results = sweep(endpoints, uptime.concurrency, uptime.user_agent, ca_file=uptime.ca_file,
                            body_limit=uptime.body_limit)
            failing = {r.check for r in results if r.failed}
            if failing and config.post_deploy.recheck_after.total_seconds() > 0:
                time.sleep(config.post_deploy.recheck_after.total_seconds())   # one blip is not a regression
            if failing:
                again = sweep([e for e in endpoints if e.name in failing], uptime.concurrency, uptime.user_agent,
                              ca_file=uptime.ca_file, body_limit=uptime.body_limit)
                results = [r for r in results if r.check not in failing] + again
            ti = context["ti"]
            store.record([_as_deploy_result(r) for r in results], dag_id=ti.dag_id, run_id=ti.run_id,
                         task_id=ti.task_id, try_number=ti.try_number)
            broken = [r for r in results if r.failed]
            for r in results:
                self.log.info("%-5s %s: %s", r.status.upper(), r.check, r.summary)
            if broken:
                self.regressed(config, store, hook, context, deployment, broken, None, [])
                continue
            to_observe.append({**deployment, "verified_at": utcnow().isoformat(),
                               "endpoints_ok": len(results)})
        self._deliver(context)
        return to_observe


def started_by_another_run(store: ResultsStore, uid: str, context: Any) -> str | None:
    """The run that started verifying `uid` (a re-announced deployment during its observe window),
    else None after recording that this run starts it (a retry of this run goes on)."""
    from maintenance.checks.deploys import GROUP, STARTED_CHECK
    from maintenance.results import CheckResult, utcnow

    ti = context["ti"]
    for row in store.history(check=STARTED_CHECK, since=utcnow() - VERDICT_LOOKBACK):
        if (row["evidence"] or {}).get("uid") == uid and row["run_id"] != ti.run_id:
            return row["run_id"]
    store.record([CheckResult(check=STARTED_CHECK, group=GROUP, status="ok", critical=False,
                              summary=f"verification of {uid} started", evidence={"uid": uid})],
                 dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, try_number=ti.try_number)
    return None


def _as_deploy_result(result: CheckResult) -> CheckResult:
    """A sweep result stored in the deploy family (the uptime checks' own history stays theirs)."""
    from dataclasses import replace

    return replace(result, check=f"deploy.{result.check}", group="deploy", critical=False)


class ObserveSentryOperator(_DeployStep):
    """Wait out post_deploy.observe_for (deferred), then Sentry, then one verdict per deployment."""

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from maintenance.config import get_config

        pending = context["ti"].xcom_pull(task_ids="verify_endpoints") or []
        if not pending:
            raise AirflowSkipException("no deployment left to observe (none READY, or already judged)")
        observe = get_config().post_deploy.observe_for
        until = max(datetime.fromisoformat(d["verified_at"]) for d in pending) + observe
        from maintenance.results import utcnow

        if until > utcnow():
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("observing until %s (post_deploy.observe_for %s) before reading Sentry", until.isoformat(),
                          observe)
            self.defer(trigger=DateTimeTrigger(moment=until), method_name="judge")
        return self.judge(context)

    def judge(self, context: Any, event: Any = None) -> list[dict[str, Any]]:
        from maintenance.checks.deploys import sentry_findings, verdict

        config, store, hook = self._setup()
        out = []
        for deployment in context["ti"].xcom_pull(task_ids="verify_endpoints") or []:
            if verdicts(store, [deployment["uid"]]):
                continue
            facts_ = read_sentry(config, deployment)
            pd = config.post_deploy
            problems = sentry_findings(facts_, max_new_issues=pd.max_new_issues, rate_factor=pd.error_rate_factor,
                                       min_errors=pd.min_errors)
            if problems:
                result = self.regressed(config, store, hook, context, deployment, [], facts_, problems)
            else:
                result = verdict(deployment, endpoint_failures=[], sentry=facts_, sentry_problems=[], way_back="")
                publish(store, result, context, "report")
                self.log.info("%s", result.summary)
            out.append({"uid": deployment["uid"], "verdict": result.reason})
        self._deliver(context)
        return out


def read_sentry(config: MaintenanceConfig, deployment: dict[str, Any]) -> Any:
    """Issues first seen in the deployment's release; error events in the windows around the deploy."""
    from maintenance.checks.deploys import SentryFacts, release_name
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.sentry import SentryHook
    from maintenance.operators.base import connection_or_none

    release = release_name(config.post_deploy.release, deployment.get("sha") or "")
    window = config.post_deploy.observe_for
    facts_ = SentryFacts(release=release, window_s=window.total_seconds())
    sentry = config.sentry
    if sentry is None or not sentry.enabled or connection_or_none(sentry.conn_id) is None:
        facts_.problem = "no sentry section or connection"
        return facts_
    if not release:
        facts_.problem = "the deployment has no commit SHA to name its release"
        return facts_
    hook = SentryHook(sentry.conn_id)
    at = datetime.fromisoformat(deployment["verified_at"])
    try:
        facts_.new_issues = hook.issues(f'firstRelease:"{release}"', stats_period="14d")
        facts_.errors_before = hook.errors_between(at - window, at)
        facts_.errors_after = hook.errors_between(at, at + window)
    except ProviderError as exc:
        facts_.problem = str(exc)
    return facts_
