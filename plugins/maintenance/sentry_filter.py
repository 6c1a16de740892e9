"""What the orchestrator sends to Sentry (Airflow's [sentry] integration, docs/PRODUCTION.md).

Airflow's task runner reports every task exception to Sentry once `[sentry] sentry_on` is set
(the DSN from SENTRY_DSN). Two things are ours to decide, in one global event processor:

- A failing *check* (ChecksFailed) is a finding about the site, already delivered to Slack with
  its runbook: it is not an error of the orchestrator, so it is not sent. Crashes are.
- No secret leaves: stack-frame local variables are dropped (a hook's frame holds the
  connection password) and exception messages pass through the project's redact().

Airflow 3.3.2 cannot take a `before_send` from the config once `sentry_on` is set (it passes the
dotted path to sentry_sdk.init as a string), hence a global event processor. It is installed when
the maintenance package is imported in a process where sentry_sdk is already loaded (a task
process with sentry_on): DAG parsing elsewhere does not import sentry_sdk for it.
"""

from __future__ import annotations

from typing import Any

_installed = False


def _is_check_failure(hint: dict[str, Any]) -> bool:
    exc_info = hint.get("exc_info") if isinstance(hint, dict) else None
    error = exc_info[1] if exc_info and len(exc_info) > 1 else None
    return error is not None and type(error).__name__ == "ChecksFailed" \
        and type(error).__module__.startswith("maintenance.")


def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """The event processor: drop check failures; strip frame locals; redact exception values,
    log messages and breadcrumbs."""
    if _is_check_failure(hint):
        return None
    from maintenance.hooks.http_policy import redact

    for exception in (event.get("exception") or {}).get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = redact(exception["value"])
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    if isinstance(event.get("logentry"), dict) and isinstance(event["logentry"].get("message"), str):
        event["logentry"]["message"] = redact(event["logentry"]["message"])
    breadcrumbs = event.get("breadcrumbs")
    for crumb in (breadcrumbs.get("values") if isinstance(breadcrumbs, dict) else breadcrumbs) or []:
        if isinstance(crumb, dict) and isinstance(crumb.get("message"), str):
            crumb["message"] = redact(crumb["message"])   # log lines of the task, as breadcrumbs
    return event


def install() -> None:
    """Register the processor once per process (no-op without sentry_sdk)."""
    global _installed
    if _installed:
        return
    try:
        from sentry_sdk.scope import add_global_event_processor
    except ImportError:   # pragma: no cover - sentry-sdk is pinned, but Sentry stays optional
        return
    add_global_event_processor(scrub)
    _installed = True
