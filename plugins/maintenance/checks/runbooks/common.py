"""Judgements several runbooks share: status pages, provider-call failures, Sentry issues."""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlsplit

from maintenance.checks.diagnosis import MONITOR_NETWORK
from maintenance.hooks.http_policy import CONNECTION, DNS, REFUSED, TIMEOUT, TLS, ProviderError
from maintenance.results import CheckResult

MONITOR_SIDE_ERRORS = (DNS, REFUSED, TIMEOUT, TLS, CONNECTION)   # no answer at all
_STATUSPAGE = {"none": "ok", "maintenance": "warn", "minor": "warn", "major": "fail", "critical": "fail"}


def statuspage(body: Any, *, check: str, group: str, provider: str, url: str) -> CheckResult:
    """An Atlassian Statuspage summary.json / status.json: indicator, components, open incidents."""
    common = dict(check=check, group=group, provider=provider, target=url)
    if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
        return CheckResult(status="warn", reason="status_unknown", summary=f"{url} did not answer in Statuspage's shape",
                           **common)
    indicator = str(body["status"].get("indicator", "?")).lower()
    description = body["status"].get("description") or indicator
    degraded = [f"{c.get('name')}: {c.get('status')}" for c in body.get("components") or []
                if isinstance(c, dict) and c.get("status") not in (None, "operational")]
    incidents = [i.get("name") for i in body.get("incidents") or [] if isinstance(i, dict)]
    status = _STATUSPAGE.get(indicator, "warn")
    if status == "ok" and (degraded or incidents):
        status = "warn"
    evidence = {"indicator": indicator, "description": description, "degraded": degraded[:10],
                "incidents": incidents[:5]}
    if status == "ok":
        return CheckResult(status="ok", summary=f"{provider} status: {description}", evidence=evidence, **common)
    detail = "; ".join(incidents[:2] or degraded[:3]) or description
    return CheckResult(status=status, reason="provider_incident", evidence=evidence,
                       summary=f"{provider} status page reports {indicator}: {detail}", **common)


def status_unreachable(exc: ProviderError, *, check: str, group: str, provider: str, url: str) -> CheckResult:
    """A status page that does not answer says nothing about the provider: a warning, not a cause.

    One the monitor cannot reach at all (DNS, refused, timeout, TLS) is the monitor's own
    network problem (reason MONITOR_NETWORK: never ranked as the incident's cause); one that
    answers with an error is the page's problem (status_unknown).
    """
    common = dict(check=check, group=group, provider=provider, target=url, status="warn")
    if exc.reason in MONITOR_SIDE_ERRORS:
        host = urlsplit(url).hostname or url
        return CheckResult(reason=MONITOR_NETWORK, evidence={"class": exc.reason}, **common,
                           summary=f"the monitor could not reach {host} ({exc}): a network problem on the "
                                   "monitor's side, not a sign of the incident")
    return CheckResult(reason="status_unknown", summary=f"{provider} status page not readable: {exc}", **common)


def provider_failure(exc: ProviderError, *, check: str, group: str, provider: str,
                     reasons: dict[str, str] | None = None, target: str = "") -> CheckResult:
    """A failed provider call; `reasons` maps the policy's reason (e.g. unauthorized) to a cause."""
    reason = (reasons or {}).get(exc.reason, exc.reason)
    return CheckResult(check=check, group=group, provider=provider, target=target, status="fail",
                       reason=reason, summary=str(exc), evidence={"http_status": exc.status, "class": exc.reason})


def guarded(check: str, group: str, provider: str, call: Callable[[], CheckResult],
            reasons: dict[str, str] | None = None) -> CheckResult:
    """Run one check; a classified provider failure becomes its failed result."""
    try:
        return call()
    except ProviderError as exc:
        return provider_failure(exc, check=check, group=group, provider=provider, reasons=reasons)


def sentry_issues(issues: list[dict[str, Any]], *, check: str, group: str, query: str) -> CheckResult:
    """The app's own errors about this incident (Sentry issues matching the runbook's query)."""
    lines = [f"{i.get('shortId', i.get('id'))} {i.get('title', '?')} ({i.get('count', '?')} events)" for i in issues[:5]]
    evidence = {"query": query, "issues": lines}
    common = dict(check=check, group=group, provider="sentry", evidence=evidence, metrics={"issues": len(issues)})
    if not issues:
        return CheckResult(status="ok", summary=f"no unresolved Sentry issues for '{query}' in 24h", **common)
    return CheckResult(status="warn", reason="app_errors",
                       summary=f"{len(issues)} Sentry issue(s) for '{query}': " + "; ".join(lines[:3]), **common)
