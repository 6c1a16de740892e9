"""runbook_payments' steps: Stripe through the stripe SDK on stripe_default's API base, Daraja
through DarajaHook, status pages and callback URLs through hooks/public.py (the HTTP policy).
Params (manual runs): mpesa_checkout_request_id (an STK push to look up)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from maintenance.operators.base import connection_or_none

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult

DAY = 24 * 3600


def _stripe(config: MaintenanceConfig):
    from maintenance.hooks.payments import stripe_client

    if config.stripe is None or not config.stripe.enabled or connection_or_none(config.stripe.conn_id) is None:
        return None, None
    return stripe_client(config.stripe.conn_id)


def _stripe_call(check: str, call, judge) -> CheckResult:
    from maintenance.checks.runbooks import payments as pay

    import stripe

    try:
        return judge(call())
    except stripe.StripeError as exc:
        message = getattr(exc, "user_message", None) or str(exc)
        return pay.stripe_key_error(type(exc).__name__, getattr(exc, "http_status", None), message[:300],
                                    getattr(exc, "code", None), check=check)


def check_payment_dashboards(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import payments as pay
    from maintenance.checks.runbooks.common import status_unreachable
    from maintenance.results import not_configured

    from maintenance.hooks import public
    from maintenance.hooks.http_policy import ProviderError

    if config.stripe is None or not config.stripe.enabled:
        return [not_configured("payments.stripe_status", pay.GROUP, "add a stripe: section")]
    url = config.runbooks.payments.stripe_status_url
    try:
        return [pay.stripe_status(public.get(url), url)]
    except ProviderError as exc:
        return [status_unreachable(exc, check="payments.stripe_status", group=pay.GROUP, provider="stripe", url=url)]


def verify_api_keys(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import payments as pay
    from maintenance.checks.runbooks.common import guarded
    from maintenance.results import not_configured

    from maintenance.hooks.payments import DarajaHook

    results = []
    client, mode = _stripe(config)
    if client is None:
        results.append(not_configured("payments.stripe_key", pay.GROUP, "add a stripe: section and stripe_default"))
    else:
        results.append(_stripe_call("stripe_key", lambda: client.v1.balance.retrieve(),
                                    lambda balance: pay.stripe_key_ok(balance, mode, config.site.environment)))
    if config.mpesa is None or not config.mpesa.enabled or connection_or_none(config.mpesa.conn_id) is None:
        results.append(not_configured("payments.daraja_key", pay.GROUP, "add an mpesa: section and mpesa_daraja"))
    else:
        hook = DarajaHook(config.mpesa.conn_id)
        results.append(guarded("payments.daraja_key", pay.GROUP, "mpesa", lambda: pay.daraja_key(hook.oauth_token()),
                               reasons={"unauthorized": "daraja_key_rejected", "http_4xx": "daraja_key_rejected"}))
    return results


def _callback_probe(url: str) -> tuple[str, int | None, str | None]:
    """(url, HTTP status, error) of an empty POST; an answer below 500 is no error (a 4xx to an
    empty body is fine)."""
    from maintenance.hooks import public
    from maintenance.hooks.http_policy import RetryPolicy

    answer = public.probe("POST", url, json={}, policy=RetryPolicy(timeout=10, attempts=2))
    return url, answer.status, answer.reason if answer.status is None or answer.status >= 500 else None


def check_webhook_logs(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import payments as pay
    from maintenance.results import not_configured

    results = []
    client, _ = _stripe(config)
    settings = config.runbooks.payments
    if client is None:
        results.append(not_configured("payments.webhook_endpoints", pay.GROUP, "add a stripe: section and stripe_default"))
    else:
        site = urlsplit(config.site.url).hostname
        results.append(_stripe_call("webhook_endpoints",
                                    lambda: [e.to_dict() for e in client.v1.webhook_endpoints.list({"limit": 100}).auto_paging_iter()],
                                    lambda endpoints: pay.webhook_endpoints(endpoints, site)))
        now = time.time()

        def events() -> list[dict[str, Any]]:
            page = client.v1.events.list({"created": {"gte": int(now - DAY)}, "limit": 100})
            return [e.to_dict() for _, e in zip(range(1000), page.auto_paging_iter())]

        results.append(_stripe_call("pending_webhooks", events, lambda found: pay.pending_webhooks(
            found, now, settings.pending_grace_minutes, settings.max_pending_webhooks)))
    if settings.mpesa_callback_urls:
        results.append(pay.callbacks([_callback_probe(u) for u in settings.mpesa_callback_urls]))
    return results


def review_payment_logs(config: MaintenanceConfig, context: Any) -> list[CheckResult]:
    from maintenance.checks.runbooks import payments as pay
    from maintenance.checks.runbooks.common import guarded
    from maintenance.results import not_configured

    from maintenance.hooks.payments import DarajaHook, stk_query

    results = []
    settings = config.runbooks.payments
    client, _ = _stripe(config)
    if client is not None:
        since = time.time() - DAY

        def intents() -> list[dict[str, Any]]:
            # No `created` filter: some Stripe-compatible servers refuse it on this list; filtered here.
            page = client.v1.payment_intents.list({"limit": 100})
            found = [i.to_dict() for _, i in zip(range(1000), page.auto_paging_iter())]
            return [i for i in found if float(i.get("created") or 0) >= since]

        results.append(_stripe_call("failed_payments", intents,
                                    lambda found: pay.failed_payments(found, settings.max_failed_payment_rate)))
    checkout = ((context.get("params") or {}).get("mpesa_checkout_request_id") or "").strip()
    if checkout:
        conn = connection_or_none(config.mpesa.conn_id) if config.mpesa else None
        if conn is None or not settings.mpesa_shortcode:
            results.append(not_configured("payments.mpesa_transaction", pay.GROUP,
                                          "set runbooks.payments.mpesa_shortcode and mpesa_daraja (extra.passkey)"))
        else:
            hook = DarajaHook(config.mpesa.conn_id)
            passkey = str(conn.extra_dejson.get("passkey", ""))
            results.append(guarded("payments.mpesa_transaction", pay.GROUP, "mpesa", lambda: pay.stk_result(
                checkout, stk_query(hook, checkout, settings.mpesa_shortcode, passkey)),
                reasons={"unauthorized": "daraja_key_rejected"}))
    results += sentry_step(config, settings.sentry_query, "payments.sentry_errors", pay.GROUP)
    return results or [not_configured("payments.logs", pay.GROUP, "configure stripe:, mpesa: or sentry:")]


def sentry_step(config: MaintenanceConfig, query: str, check: str, group: str) -> list[CheckResult]:
    """The app's Sentry issues matching the runbook's query (nothing when Sentry is not configured)."""
    from maintenance.checks.runbooks.common import guarded, sentry_issues

    from maintenance.hooks.sentry import SentryHook

    if config.sentry is None or not config.sentry.enabled or connection_or_none(config.sentry.conn_id) is None:
        return []
    hook = SentryHook(config.sentry.conn_id)
    return [guarded(check, group, "sentry",
                    lambda: sentry_issues(hook.issues(query, stats_period="24h", limit=25), check=check, group=group,
                                          query=query))]
