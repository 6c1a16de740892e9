"""Payment-provider reachability and the external monitors' cross-check: plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from maintenance.hooks.http_policy import ProviderError
from maintenance.results import CheckResult


def provider_call(check: str, group: str, provider: str, runbook: str, call: Callable[[], Any],
                  judge: Callable[[Any], tuple[str, str]]) -> CheckResult:
    """Run one provider API call; its classified failure or judge(answer) -> (status, summary)."""
    common = dict(check=check, group=group, provider=provider, runbook=runbook)
    try:
        answer = call()
    except ProviderError as exc:
        return CheckResult(status="fail", reason=exc.reason, summary=str(exc), **common)
    status, summary = judge(answer)
    return CheckResult(status=status, summary=summary, reason=None if status == "ok" else "malformed_response",
                       **common)


def judge_stripe_balance(body: Any) -> tuple[str, str]:
    if isinstance(body, dict) and body.get("object") == "balance":
        mode = "live" if body.get("livemode") else "test"
        return "ok", f"Stripe API reachable, key valid ({mode} mode)"
    return "fail", "Stripe /v1/balance answered without a balance object"


def judge_daraja_token(body: Any) -> tuple[str, str]:
    if isinstance(body, dict) and body.get("access_token"):
        return "ok", f"Daraja OAuth token issued (expires in {body.get('expires_in', '?')}s)"
    return "fail", "Daraja OAuth answered without an access_token"


@dataclass
class ExternalMonitor:
    source: str          # UptimeRobot / Pingdom
    name: str
    url: str             # URL, or host name for Pingdom
    status: str          # up | down | paused | unknown


def from_uptimerobot(monitor: dict[str, Any]) -> ExternalMonitor:
    status = str(monitor.get("status", "unknown")).lower()
    status = {"up": "up", "down": "down", "paused": "paused", "seems_down": "down"}.get(status, "unknown")
    return ExternalMonitor("UptimeRobot", monitor.get("friendlyName") or str(monitor.get("id")),
                           monitor.get("url") or "", status)


def from_pingdom(check: dict[str, Any]) -> ExternalMonitor:
    status = {"up": "up", "down": "down", "unconfirmed_down": "down", "paused": "paused"}.get(
        str(check.get("status")), "unknown")
    return ExternalMonitor("Pingdom", check.get("name") or str(check.get("id")), check.get("hostname") or "", status)


def _same_target(monitor_url: str, endpoint_url: str) -> bool:
    if "://" not in monitor_url:                      # Pingdom: a host name only
        return urlsplit(endpoint_url).hostname == monitor_url
    a, b = urlsplit(monitor_url), urlsplit(endpoint_url)
    return (a.hostname, a.port, a.path.rstrip("/")) == (b.hostname, b.port, b.path.rstrip("/"))


def cross_check(monitors: list[ExternalMonitor], own: dict[str, tuple[str, str]]) -> list[CheckResult]:
    """Compare external monitors with our latest results.

    own: endpoint URL -> (endpoint name, our latest status). A monitor that is down or paused
    there, or that disagrees with our own result, is reported.
    """
    results = []
    for monitor in monitors:
        ours = next(((name, status) for url, (name, status) in own.items() if _same_target(monitor.url, url)), None)
        check = f"external.{monitor.source.lower()}.{monitor.name}"
        common = dict(check=check, target=monitor.url, group="uptime", provider=None, runbook="uptime_monitor",
                      evidence={"external_status": monitor.status, "our_status": ours[1] if ours else None})
        we = f"our check {ours[0]} is {ours[1]}" if ours else "no endpoint of ours matches it"
        if monitor.status == "down":
            disagree = " (disagrees: " + we + ")" if ours and ours[1] == "ok" else ""
            results.append(CheckResult(status="fail", reason="external_down",
                                       summary=f"{monitor.source} reports {monitor.name} DOWN{disagree}", **common))
        elif monitor.status == "paused":
            results.append(CheckResult(status="warn", reason="paused",
                                       summary=f"{monitor.source} monitor {monitor.name} is paused: nobody watches it there",
                                       **common))
        elif monitor.status == "up" and ours and ours[1] == "fail":
            results.append(CheckResult(status="warn", reason="disagreement",
                                       summary=f"{monitor.source} reports {monitor.name} up, but {we}", **common))
        else:
            results.append(CheckResult(status="ok" if monitor.status == "up" else "warn",
                                       reason=None if monitor.status == "up" else "unknown",
                                       summary=f"{monitor.source} reports {monitor.name} {monitor.status}; {we}",
                                       **common))
    return results
