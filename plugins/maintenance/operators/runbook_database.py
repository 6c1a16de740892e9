"""runbook_database's steps (operators/runbooks.py runs them): fetch with the hooks, judge with
checks/runbooks/database.py. Each returns the step's CheckResults; none raises for a finding."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from maintenance.operators.base import connection_or_none

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult

ATLAS_HOW = "add an atlas: section and the atlas_api connection (extra: project_id, cluster)"


def _atlas(config: MaintenanceConfig):
    from maintenance.hooks.atlas import AtlasHook

    if config.atlas is None or not config.atlas.enabled or connection_or_none(config.atlas.conn_id) is None:
        return None
    return AtlasHook(config.atlas.conn_id)


def check_atlas_status(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import database as db
    from maintenance.checks.runbooks.common import guarded, status_unreachable, statuspage
    from maintenance.results import not_configured

    from maintenance.hooks import public
    from maintenance.hooks.http_policy import ProviderError

    url = config.runbooks.database.status_url
    try:
        status = statuspage(public.get(url), check="database.atlas_status", group=db.GROUP, provider="atlas",
                            url=url)
    except ProviderError as exc:
        status = status_unreachable(exc, check="database.atlas_status", group=db.GROUP, provider="atlas", url=url)
    hook = _atlas(config)
    if hook is None:
        return [status, not_configured("database.cluster_state", db.GROUP, ATLAS_HOW)]
    return [status, guarded("database.cluster_state", db.GROUP, "atlas",
                            lambda: db.cluster_state(hook.cluster_description()))]


def _mongo_uri(conn_id: str) -> str:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    return MongoHook(mongo_conn_id=conn_id).uri


def verify_connection_string(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import database as db
    from maintenance.results import CheckResult, not_configured

    from maintenance.hooks.dns import connect, lookup, make_resolver

    conn_id = config.runbooks.database.mongo_conn_id
    if connection_or_none(conn_id) is None:
        return [not_configured("database.connection_string", db.GROUP,
                               f"set Airflow connection '{conn_id}' (the app's MongoDB URI)")]
    try:
        uri = _mongo_uri(conn_id)
    except Exception as exc:  # noqa: BLE001 - MongoHook refuses a malformed connection itself
        return [CheckResult(check="database.connection_string", status="fail", reason="uri_invalid", group=db.GROUP,
                            runbook=db.RUNBOOK, provider="atlas",
                            summary=f"connection '{conn_id}' is refused by MongoHook: {type(exc).__name__}: {exc}")]
    result, parsed = db.connection_string(uri, conn_id)
    results = [result]
    if parsed is None:
        return results
    resolver = make_resolver(config.runbooks.resolver) if config.runbooks.resolver or parsed.srv else None
    seeds = parsed.hosts
    if parsed.srv:
        host = parsed.hosts[0][0]
        srv = lookup(f"_mongodb._tcp.{host}", "SRV", resolver)
        txt = lookup(host, "TXT", resolver)
        results.append(db.srv_records(host, srv, txt))
        seeds = [(a.split()[3], int(a.split()[2])) for a in srv.answers]
    results.append(db.hosts_answer([(h, p, connect(h, p, resolver)) for h, p in seeds]))
    return results


def _egress_ip(config: MaintenanceConfig) -> tuple[str | None, str | None]:
    from maintenance.hooks import public
    from maintenance.hooks.dns import is_ip
    from maintenance.hooks.http_policy import ProviderError

    settings = config.runbooks.database
    if settings.egress_ip:
        return settings.egress_ip, None
    if not settings.egress_echo_url:
        return None, "set runbooks.database.egress_ip or egress_echo_url"
    try:
        response = public.get(settings.egress_echo_url, expect_json=False)
    except ProviderError as exc:
        return None, f"echo URL failed: {exc}"
    text = response.text.strip()
    if text.startswith("{"):
        try:
            text = str(response.json().get("ip", ""))
        except ValueError:
            pass
    return (text, None) if is_ip(text) else (None, f"echo URL answered {text[:40]!r}, not an IP address")


def check_network_access(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import database as db
    from maintenance.checks.runbooks.common import guarded
    from maintenance.results import not_configured, utcnow

    hook = _atlas(config)
    if hook is None:
        return [not_configured("database.access_list", db.GROUP, ATLAS_HOW)]
    egress, error = _egress_ip(config)
    since = (utcnow() - timedelta(hours=config.runbooks.database.events_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def judge() -> CheckResult:
        return db.access_list(hook.access_list(), egress, hook.events(since), utcnow(), egress_error=error)

    return [guarded("database.access_list", db.GROUP, "atlas", judge)]


def ping_database(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    """A timed connect and ping through MongoHook, the way the app connects."""
    from maintenance.checks.runbooks import database as db
    from maintenance.results import not_configured

    from airflow.providers.mongo.hooks.mongo import MongoHook

    settings = config.runbooks.database
    if connection_or_none(settings.mongo_conn_id) is None:
        return [not_configured("database.ping", db.GROUP, f"set Airflow connection '{settings.mongo_conn_id}'")]
    hook = MongoHook(mongo_conn_id=settings.mongo_conn_id)
    hook.extras.setdefault("serverSelectionTimeoutMS", settings.connect_timeout_ms)
    hook.extras.setdefault("connectTimeoutMS", settings.connect_timeout_ms)
    start = time.monotonic()
    try:
        client = hook.get_conn()
        try:
            answer = client.admin.command("ping")
            hello = client.admin.command("hello")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - every pymongo error is classified
        return [db.ping_failed(exc, (time.monotonic() - start) * 1000, settings.mongo_conn_id)]
    ms = (time.monotonic() - start) * 1000
    server = {"setName": hello.get("setName"), "primary": hello.get("primary"), "ok": answer.get("ok")}
    return [db.ping_ok(ms, {k: v for k, v in server.items() if v is not None})]


def review_connection_logs(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import database as db
    from maintenance.checks.runbooks.common import guarded
    from maintenance.results import not_configured, utcnow

    hook = _atlas(config)
    if hook is None:
        return [not_configured("database.events", db.GROUP, ATLAS_HOW)]
    hours = config.runbooks.database.events_hours
    since = (utcnow() - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [guarded("database.events", db.GROUP, "atlas",
                    lambda: db.cluster_events(hook.events(since, cluster=hook.cluster), hours))]
