"""maintenance_weekly's review_security_logs: the week's Atlas project events and the app's admin
audit log (MongoDB, aggregated there). Unexpected changes page through the base operator; the
review's summary goes to the digest. Logic: checks/security_logs.py; MongoDB: hooks/audit_log.py."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from maintenance.operators.base import MaintenanceCheckOperator, connection_or_none, enqueue_report_once

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from datetime import datetime

    from maintenance.config import MaintenanceConfig, SecurityLogs
    from maintenance.results import CheckResult

HOW = ("add a security_logs: section to the maintenance config (atlas_events with an atlas: section and its "
       "connection; collection: the app's admin audit log on connection mongo_default)")


class SecurityLogsOperator(MaintenanceCheckOperator):
    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.security_logs import logs_summary
        from maintenance.results import not_configured, utcnow

        logs = config.security_logs
        if logs is None or not logs.enabled:
            return [not_configured("security.logs", "security", HOW)]
        runbook = context["dag"].dag_id
        end = utcnow()
        start = end - timedelta(days=logs.period_days)
        results = [atlas_events(config, start, end, runbook), atlas_org_events(config, start, end, runbook),
                   *admin_log(logs, start, end, runbook)]
        if any(r.status != "skipped" for r in results):
            results.append(logs_summary(results, start, end))
        return results

    def conclude(self, context: Any, config: MaintenanceConfig, results: list[CheckResult]) -> list[dict[str, Any]]:
        from maintenance.hooks.results_db import results_store

        summary = next((r for r in results if r.check == "security.logs.summary"), None)
        if summary is not None:
            enqueue_report_once(results_store(config.results.conn_id), summary, context, channel="digest")
        return super().conclude(context, config, results)


def atlas_events(config: MaintenanceConfig, start: datetime, end: datetime, runbook: str) -> CheckResult:
    from maintenance.checks.security_logs import judge_atlas_events
    from maintenance.hooks.atlas import AtlasHook
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.results import CheckResult, not_configured

    logs = config.security_logs
    assert logs is not None
    check = "security.logs.atlas"
    if not logs.atlas_events:
        return not_configured(check, "security", "security_logs.atlas_events is false")
    if config.atlas is None or not config.atlas.enabled or connection_or_none(config.atlas.conn_id) is None:
        conn = config.atlas.conn_id if config.atlas else "atlas_api"
        return not_configured(check, "security", f"add an atlas: section and the Airflow connection '{conn}' "
                                                 "(a key with Project Read Only or more)")
    hook = AtlasHook(config.atlas.conn_id)
    try:
        events = hook.events(_iso(start), _iso(end))
        return judge_atlas_events(events, logs.expected_event_types, project=hook.project_id, runbook=runbook)
    except ProviderError as exc:
        return CheckResult(check=check, group="security", status="fail", reason=exc.reason, provider="atlas",
                           runbook=runbook, summary=f"the Atlas project events could not be read: {exc}")


def atlas_org_events(config: MaintenanceConfig, start: datetime, end: datetime, runbook: str) -> CheckResult:
    """The organisation's access-list settings (API access list no longer required, UI access list
    disabled): organisation events, on listOrgEvents. A key that may not read the organisation
    gets a warning saying what is not watched, not a page."""
    from maintenance.checks.security_logs import ORG_EVENT_TYPES, judge_atlas_events
    from maintenance.hooks.atlas import AtlasHook
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.results import CheckResult, not_configured

    logs = config.security_logs
    assert logs is not None
    check = "security.logs.atlas_org"
    if not logs.atlas_events or config.atlas is None or not config.atlas.enabled \
            or connection_or_none(config.atlas.conn_id) is None:
        return not_configured(check, "security", "needs what the Atlas project events need (see security.logs.atlas)")
    hook = AtlasHook(config.atlas.conn_id)
    try:
        org = hook.org_id        # read from the project: a failure here is the key's or the project's
    except ProviderError as exc:
        return CheckResult(check=check, group="security", status="fail", reason=exc.reason, provider="atlas",
                           runbook=runbook, summary=f"the Atlas project's organisation could not be read: {exc}")
    try:
        events = hook.org_events(_iso(start), _iso(end), event_types=ORG_EVENT_TYPES)
        return judge_atlas_events(events, logs.expected_event_types, project=hook.project_id, runbook=runbook,
                                  org=org)
    except ProviderError as exc:
        denied = exc.status in (401, 403)
        return CheckResult(check=check, group="security", status="warn" if denied else "fail", reason=exc.reason,
                           provider="atlas", runbook=runbook, critical=not denied,
                           summary="the Atlas organisation's events could not be read, so an organisation-wide "
                                   "access-list change (API access list no longer required, UI access list "
                                   f"disabled) would go unseen: {exc}"
                                   + ("; give the key Organization Read Only" if denied else ""))


def admin_log(logs: SecurityLogs, start: datetime, end: datetime, runbook: str) -> list[CheckResult]:
    from maintenance.checks.security_logs import judge_admin_actions, judge_failed_logins, judge_role_changes
    from maintenance.hooks.audit_log import read_audit_log
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.results import CheckResult, not_configured

    check = "security.logs.admin"
    if logs.collection is None:
        return [not_configured(check, "security", "set security_logs.collection to the app's admin audit log")]
    if connection_or_none(logs.mongo_conn_id) is None:
        return [not_configured(check, "security", f"set Airflow connection '{logs.mongo_conn_id}' (mongo: the "
                                                  "app database, a user that can read the audit collection)")]
    try:
        found = read_audit_log(logs.mongo_conn_id, logs.database, logs.collection, logs.fields.model_dump(),
                               since=start, until=end, login_action=logs.login_action,
                               role_action=logs.role_change_action)
    except ProviderError as exc:
        return [CheckResult(check=check, target=logs.collection, group="security", status="fail", reason=exc.reason,
                            runbook=runbook, summary=f"the admin audit log could not be read: {exc}")]
    where = f"{found['database']}.{logs.collection}"
    return [judge_admin_actions(found["by_user"], collection=where, runbook=runbook),
            judge_role_changes(found["role_changes"], logs.admin_roles, logs.expected_admins, collection=where,
                               runbook=runbook),
            judge_failed_logins(found["failed_per_minute"], found["logins"], logs.max_failed_logins_per_hour,
                                collection=where, runbook=runbook)]


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
