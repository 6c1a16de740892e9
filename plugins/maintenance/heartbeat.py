"""Heartbeat pings: a dead-man's switch outside Airflow knows each scheduled DAG is alive.

healthchecks.io style, on the `heartbeat` connection (http; host = the ping URL base):
    <base>[/<slug>]/start   when a run starts (first try of the DAG's first root task)
    <base>[/<slug>]         when a run succeeds       (DAG-level on_success_callback)
    <base>[/<slug>]/fail    when a run fails          (DAG-level on_failure_callback)
The slug per DAG comes from the config (`heartbeat.slugs`); without one the DAG pings the base.

Why DAG-level callbacks for success and fail: they run in the dag-processor once the scheduler
has decided the run's state, so a success ping proves scheduler, workers and dag-processor all
work; and they cannot change the run's state, so a heartbeat endpoint that is down never fails
a DAG. There is no DAG-level "run started" callback, hence the task-level on_execute_callback
for /start (on the worker, before the first root task runs) instead of an extra task per run.

A ping is one short call (two tries); a missing connection means nothing happens, and an
error is logged, never raised. The ping URL's token is a secret (anyone holding it can
report the DAGs healthy): it is masked in the task log and redacted from the error.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:   # imported when a ping is sent, not when a DAG file is parsed
    from maintenance.config import Heartbeat

log = logging.getLogger(__name__)

PING_ATTEMPTS = 2   # one short call and one retry (timeout 5 s each)

Event = Literal["start", "success", "fail"]
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def ping_tokens(base_url: str, slug: str = "") -> list[str]:
    """The secrets of a ping URL: the last segment of the base's path (healthchecks.io's
    /ping/<uuid>, hc-ping.com/<ping-key>) and a slug that is a check's UUID."""
    last = urlsplit(base_url).path.strip("/").rsplit("/", 1)[-1]
    tokens = [last] if last and last != "ping" else []
    return tokens + [part for part in slug.split("/") if _UUID.fullmatch(part)]


def ping_endpoint(settings: Heartbeat, dag_id: str, event: Event) -> str:
    """The path under the connection's base URL, e.g. 'uptime/start' or '' (success, no slug)."""
    parts = [settings.slugs.get(dag_id, "").strip("/"), "" if event == "success" else event]
    return "/".join(p for p in parts if p)


def ping(dag_id: str, event: Event) -> bool:
    """Send one heartbeat ping; True when the endpoint accepted it. Never raises."""
    try:
        from airflow.sdk.exceptions import AirflowNotFoundException

        from maintenance.config import Heartbeat, get_config
        from maintenance.hooks.http import PolicyHttpHook
        from maintenance.hooks.http_policy import RetryPolicy

        settings = get_config().heartbeat or Heartbeat()
        policy = RetryPolicy(timeout=5, attempts=PING_ATTEMPTS, backoff_base=1.0, backoff_max=2.0)
        hook = PolicyHttpHook(settings.conn_id, policy=policy)
        try:
            hook.session  # noqa: B018 - resolves the connection
        except AirflowNotFoundException:
            log.debug("no '%s' connection: heartbeat ping skipped", settings.conn_id)
            return False
        hook.add_secrets(*ping_tokens(hook.base_url, settings.slugs.get(dag_id, "")))
        hook.request("GET", ping_endpoint(settings, dag_id, event), expect_json=False)
        log.info("heartbeat ping sent: %s %s", dag_id, event)
        return True
    except Exception as exc:  # noqa: BLE001 - the heartbeat must never fail the DAG
        log.warning("heartbeat ping %s %s not sent: %s", dag_id, event, exc)
        return False


def _dag_id(context: dict[str, Any]) -> str | None:
    dag = context.get("dag")
    return getattr(dag, "dag_id", None)


def on_run_start(context: dict[str, Any]) -> None:
    """Task-level on_execute_callback: /start, once per run (first root task, first try)."""
    ti, dag = context.get("ti"), context.get("dag")
    if ti is None or dag is None or getattr(ti, "try_number", 1) != 1:
        return
    roots = sorted(t.task_id for t in dag.roots)
    if roots and ti.task_id == roots[0]:
        ping(dag.dag_id, "start")


def on_dag_success(context: dict[str, Any]) -> None:
    """DAG-level on_success_callback (runs in the dag-processor)."""
    if dag_id := _dag_id(context):
        ping(dag_id, "success")


def on_dag_failure(context: dict[str, Any]) -> None:
    """DAG-level on_failure_callback (runs in the dag-processor)."""
    if dag_id := _dag_id(context):
        ping(dag_id, "fail")
