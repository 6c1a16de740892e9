"""runbook_email's steps, for Mailgun or SendGrid (the config's email: section). Params (manual
runs): recipient (an address to look for in the bounce list)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from maintenance.operators.base import connection_or_none

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult

STATUS = {"mailgun": "https://status.mailgun.com/api/v2/summary.json",
          "sendgrid": "https://status.sendgrid.com/api/v2/summary.json"}
KEY_REASONS = {"unauthorized": "email_key_invalid"}

log = logging.getLogger(__name__)


def _provider(config: MaintenanceConfig):
    """(provider name, hook, domain) or None when email is not configured."""
    from maintenance.hooks.email import MailgunHook, SendGridHook

    if config.email is None:
        return None
    name = config.email.provider
    conn_id = config.email.conn_id or f"{name}_default"
    if connection_or_none(conn_id) is None:
        return None
    hook = MailgunHook(conn_id) if name == "mailgun" else SendGridHook(conn_id)
    return name, hook, config.email.domain or ""


HOW = "add an email: section (provider, domain) and its mailgun_default / sendgrid_default connection"


def check_email_dashboard(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import email as em
    from maintenance.checks.runbooks.common import guarded, status_unreachable, statuspage
    from maintenance.results import not_configured

    from maintenance.hooks import public
    from maintenance.hooks.http_policy import ProviderError

    found = _provider(config)
    if found is None:
        return [not_configured("email.status", em.GROUP, HOW)]
    name, hook, domain = found
    settings = config.runbooks.email
    url = settings.status_url or STATUS[name]
    try:
        status = statuspage(public.get(url), check="email.status", group=em.GROUP, provider=name, url=url)
    except ProviderError as exc:
        status = status_unreachable(exc, check="email.status", group=em.GROUP, provider=name, url=url)

    def rates() -> CheckResult:
        source = None
        if name == "mailgun":
            totals, source = _mailgun_totals(hook, domain)
        else:
            totals = em.sendgrid_totals(hook.stats((datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")))
        return em.delivery_rates(totals, name, max_bounce=settings.max_bounce_rate, source=source,
                                 max_complaint=settings.max_complaint_rate, max_failed=settings.max_failed_rate)

    return [status, guarded("email.delivery", em.GROUP, name, rates, KEY_REASONS)]


def _mailgun_totals(hook: Any, domain: str) -> tuple[dict[str, float], str]:
    """(totals, which API counted them): the Metrics API; the deprecated stats totals when the
    account has no Metrics API (403/404). A refused key (401) is not retried on the other API:
    it would be refused there too."""
    from maintenance.checks.runbooks import email as em
    from maintenance.hooks.http_policy import ProviderError

    try:
        return em.mailgun_metric_totals(hook.metrics(domain)), "Metrics API"
    except ProviderError as exc:
        if exc.status not in (403, 404):
            raise
        log.info("Mailgun Metrics API refused (%s): reading the deprecated stats totals instead", exc)
        return em.mailgun_totals(hook.stats(domain)), f"stats API (the Metrics API answered HTTP {exc.status})"


def verify_api_keys(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import email as em
    from maintenance.checks.runbooks.common import guarded
    from maintenance.results import not_configured

    found = _provider(config)
    if found is None:
        return [not_configured("email.api_key", em.GROUP, HOW)]
    name, hook, domain = found
    if name == "mailgun":
        return [guarded("email.domain", em.GROUP, name, lambda: em.mailgun_domain(hook.domain(domain), domain),
                        {**KEY_REASONS, "http_4xx": "domain_not_found"})]
    return [guarded("email.api_key", em.GROUP, name, lambda: em.sendgrid_scopes(hook.scopes()), KEY_REASONS),
            guarded("email.domain", em.GROUP, name, lambda: em.sendgrid_domain(hook.domains(), domain), KEY_REASONS)]


def check_blacklist_status(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import email as em
    from maintenance.results import not_configured

    from maintenance.hooks.dns import lookup, make_resolver

    settings = config.runbooks.email
    provider = config.email.provider if config.email else "mailgun"
    domain = config.email.domain if config.email else None
    if not settings.sending_ips and not domain:
        return [not_configured("email.blocklists", em.GROUP, "set runbooks.email.sending_ips (and email.domain)")]
    resolver = make_resolver(config.runbooks.resolver)
    lookups = []
    for ip in settings.sending_ips:
        for zone in settings.dnsbl_zones:
            found = lookup(f"{em.reversed_ip(ip)}.{zone}", "A", resolver)
            lookups.append((ip, zone, found.answers, found.error))
    if domain:
        for zone in settings.domain_zones:
            found = lookup(f"{domain}.{zone}", "A", resolver)
            lookups.append((domain, zone, found.answers, found.error))
    result = em.dnsbl(lookups, provider)
    result.evidence["resolver"] = config.runbooks.resolver or "system"
    return [result]


def _recent_mailgun(items: list[dict[str, Any]], since: datetime) -> list[dict[str, Any]]:
    recent = []
    for item in items:
        try:
            when = parsedate_to_datetime(str(item.get("created_at")))
        except (TypeError, ValueError):
            continue
        if when >= since:
            recent.append(item)
    return recent


def review_email_logs(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import email as em
    from maintenance.checks.runbooks.common import guarded
    from maintenance.results import not_configured

    found = _provider(config)
    if found is None:
        return [not_configured("email.bounces", em.GROUP, HOW)]
    name, hook, domain = found
    recipient = ((context.get("params") or {}).get("recipient") or "").strip().lower()
    since = datetime.now(timezone.utc) - timedelta(days=1)

    def judge() -> CheckResult:
        if name == "mailgun":
            everything = hook.bounces(domain)
            recent = _recent_mailgun(everything, since)
        else:
            everything = recent = hook.bounces(int(time.time() - 86400))
        result = em.bounce_growth(recent, name, config.runbooks.email.max_suppression_growth)
        if recipient:
            hit = next((b for b in everything if str(b.get("address") or b.get("email", "")).lower() == recipient), None)
            result.evidence["recipient"] = recipient
            result.evidence["recipient_bounced"] = (f"yes: {hit.get('code') or hit.get('status')} "
                                                    f"{str(hit.get('error') or hit.get('reason'))[:80]}" if hit else "no")
        return result

    return [guarded("email.bounces", em.GROUP, name, judge, KEY_REASONS)]
