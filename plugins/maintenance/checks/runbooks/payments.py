"""runbook_payments: Stripe status and key, webhook endpoints and undelivered events, failed
PaymentIntents by code; Daraja OAuth, callback URLs and STK push query results; Sentry."""

from __future__ import annotations

from collections import Counter
from typing import Any

from maintenance.checks.diagnosis import Cause
from maintenance.results import CheckResult

GROUP, RUNBOOK = "payments", "runbook_payments"
CONTACTS = ("stripe", "mpesa")

CAUSES = {c.reason: c for c in (
    Cause("provider_incident", "Stripe reports an incident", 10,
          "follow status.stripe.com; nothing to fix on our side: tell members and watch it", "stripe"),
    Cause("stripe_key_revoked", "The Stripe secret key is revoked or wrong", 20,
          "Stripe Dashboard > Developers > API keys: roll or create the key, update stripe_default and the app's "
          "STRIPE_SECRET_KEY on Vercel, redeploy", "stripe"),
    Cause("daraja_key_rejected", "Daraja rejects the M-Pesa consumer key or secret", 20,
          "developer.safaricom.co.ke > My Apps: check the key and secret and the host (sandbox keys fail on "
          "production); update mpesa_daraja and the app's variables, redeploy", "mpesa"),
    Cause("stripe_key_restricted", "The Stripe key lacks a permission the app needs", 25,
          "Stripe Dashboard > Developers > API keys > the restricted key: grant the permission named below", "stripe"),
    Cause("webhook_disabled", "A Stripe webhook endpoint is disabled", 30,
          "Stripe Dashboard > Developers > Webhooks > the endpoint: fix what made it fail, enable it, resend the "
          "failed events", "stripe"),
    Cause("callback_unreachable", "An M-Pesa callback URL does not answer from outside", 35,
          "check the callback route on the live site (public HTTPS); re-register the C2B URLs if they changed", "mpesa"),
    Cause("webhooks_piling_up", "Stripe events are not being delivered to our webhook", 40,
          "Stripe Dashboard > Webhooks > the endpoint: read the failed attempts (status, response); a signature "
          "error means STRIPE_WEBHOOK_SECRET does not match; then resend the events", "stripe"),
    Cause("wrong_mode", "The Stripe key's mode does not match the environment", 45,
          "use a live key in production and a test key elsewhere (stripe_default and Vercel)", "stripe"),
    Cause("payment_errors_system", "Payments fail with Stripe API or processing errors", 50,
          "Stripe Dashboard > Developers > Logs for the failing requests; Sentry for the payment route", "stripe"),
    Cause("webhook_url_mismatch", "A Stripe webhook endpoint points at another site", 55,
          "Stripe Dashboard > Webhooks: point the endpoint at the live site's webhook route", "stripe"),
    Cause("mpesa_failed", "The M-Pesa transaction failed", 60,
          "read the result code below: customer-side codes (1032 cancelled, 1037 unreachable, 2001 wrong PIN) "
          "need a message to the member, not a fix", "mpesa"),
    Cause("high_decline_rate", "Many payments are declined (customer-side)", 75,
          "customer-side codes need a message to the member, not a fix; watch for a card-testing attack", "stripe"),
    Cause("app_errors", "The app reports payment errors in Sentry", 85,
          "open the Sentry issues below for the exact error", "sentry"),
    Cause("mpesa_pending", "The M-Pesa transaction is still being processed", 90,
          "wait and query again; 500.001.1001 means pending, not failed", "mpesa"),
)}

SYSTEM_ERROR_TYPES = {"api_error", "idempotency_error", "invalid_request_error"}
STK_RESULTS = {"0": "paid", "1": "insufficient balance", "17": "internal failure / rule limited", "26": "system busy",
               "1001": "subscriber locked: another transaction in progress", "1019": "transaction expired",
               "1025": "error sending the push", "9999": "error sending the push", "1032": "cancelled by the user",
               "1037": "phone unreachable (DS timeout)", "2001": "wrong PIN / invalid initiator"}
CUSTOMER_STK = {"1", "1019", "1032", "1037", "2001"}


def _result(check: str, status: str, summary: str, reason: str | None = None, provider: str = "stripe",
            **kw: Any) -> CheckResult:
    return CheckResult(check=f"payments.{check}", status=status, summary=summary, reason=reason, group=GROUP,
                       runbook=RUNBOOK, provider=provider, **kw)


def stripe_status(body: Any, url: str) -> CheckResult:
    """status.stripe.com/current: {largestatus: up|degraded|down, statuses: {api, webhooks, ...}}."""
    if not isinstance(body, dict) or "largestatus" not in body:
        return _result("stripe_status", "warn", f"{url} did not answer in Stripe's status shape", "status_unknown",
                       target=url)
    statuses = body.get("statuses") if isinstance(body.get("statuses"), dict) else {}
    bad = {k: v for k, v in statuses.items() if v != "up"}
    evidence = {"largestatus": body.get("largestatus"), "message": body.get("message"), "not_up": bad}
    large = str(body.get("largestatus"))
    if large == "up" and not bad:
        return _result("stripe_status", "ok", "Stripe status: all systems up", evidence=evidence, target=url)
    status = "fail" if large == "down" or "down" in bad.values() or bad.get("api") == "degraded" else "warn"
    parts = ", ".join(f"{k} {v}" for k, v in bad.items()) or large
    return _result("stripe_status", status, f"Stripe status {large}: {parts} ({body.get('message', '')})".strip(),
                   "provider_incident", evidence=evidence, target=url)


def stripe_key_ok(balance: Any, mode: str, environment: str) -> CheckResult:
    live = bool(getattr(balance, "livemode", None) if not isinstance(balance, dict) else balance.get("livemode"))
    evidence = {"key_mode": mode, "livemode": live, "environment": environment}
    if environment == "production" and not live:
        return _result("stripe_key", "warn", "the Stripe key works but is a TEST key in production", "wrong_mode",
                       evidence=evidence)
    if environment != "production" and live:
        return _result("stripe_key", "warn", f"the Stripe key is a LIVE key in {environment}", "wrong_mode",
                       evidence=evidence)
    return _result("stripe_key", "ok", f"the Stripe key is valid ({'live' if live else 'test'} mode)",
                   evidence=evidence)


def stripe_key_error(kind: str, http_status: int | None, message: str, code: str | None,
                     check: str = "stripe_key") -> CheckResult:
    """A failed Stripe call of `check`; kind: the stripe error class name (AuthenticationError, ...)."""
    evidence = {"error": kind, "http_status": http_status, "code": code}
    if kind == "AuthenticationError" or http_status == 401:
        return _result(check, "fail", f"Stripe refuses the key on stripe_default: {message}",
                       "stripe_key_revoked", evidence=evidence)
    if kind == "PermissionError" or http_status == 403:
        permission = next((w.strip("'.") for w in message.split() if w.strip("'").startswith("rak_")), None)
        evidence["missing_permission"] = permission
        return _result(check, "fail", f"the restricted Stripe key lacks a permission: {message}",
                       "stripe_key_restricted", evidence=evidence)
    return _result(check, "fail", f"Stripe API call failed: {kind}: {message}", "payment_errors_system"
                   if http_status and http_status >= 500 else "provider_unreachable", evidence=evidence)


def webhook_endpoints(endpoints: list[dict[str, Any]], site_host: str | None) -> CheckResult:
    disabled = [f"{e.get('id')} {e.get('url')}" for e in endpoints if str(e.get("status", "enabled")) != "enabled"]
    foreign = [f"{e.get('id')} {e.get('url')}" for e in endpoints
               if site_host and site_host not in str(e.get("url", ""))]
    evidence = {"endpoints": [f"{e.get('id')} {e.get('url')} ({e.get('status')})" for e in endpoints],
                "disabled": disabled, "other_sites": foreign}
    if not endpoints:
        return _result("webhook_endpoints", "warn", "no Stripe webhook endpoint is configured", "webhook_disabled",
                       evidence=evidence)
    if disabled:
        return _result("webhook_endpoints", "fail", f"{len(disabled)} webhook endpoint(s) disabled: {disabled[0]}",
                       "webhook_disabled", evidence=evidence)
    if foreign:
        return _result("webhook_endpoints", "warn", f"webhook endpoint(s) not on {site_host}: {foreign[0]}",
                       "webhook_url_mismatch", evidence=evidence)
    return _result("webhook_endpoints", "ok", f"{len(endpoints)} webhook endpoint(s) enabled", evidence=evidence)


def pending_webhooks(events: list[dict[str, Any]], now_ts: float, grace_minutes: int, max_pending: int) -> CheckResult:
    """Events of the last 24 h whose pending_webhooks > 0 (older than the grace: not in flight)."""
    stuck = [e for e in events if int(e.get("pending_webhooks") or 0) > 0
             and now_ts - float(e.get("created") or now_ts) > grace_minutes * 60]
    types = Counter(str(e.get("type")) for e in stuck)
    oldest = min((float(e.get("created") or now_ts) for e in stuck), default=None)
    evidence = {"events_24h": len(events), "undelivered": len(stuck), "types": dict(types.most_common(5)),
                "oldest_undelivered_minutes": round((now_ts - oldest) / 60) if oldest else None,
                "examples": [e.get("id") for e in stuck[:5]]}
    metrics = {"undelivered_events": len(stuck)}
    if len(stuck) > max_pending:
        return _result("pending_webhooks", "fail", f"{len(stuck)} event(s) of the last 24h not delivered to a webhook "
                       f"(oldest {evidence['oldest_undelivered_minutes']} min): {', '.join(types)}",
                       "webhooks_piling_up", evidence=evidence, metrics=metrics)
    return _result("pending_webhooks", "ok", f"{len(stuck)} undelivered event(s) of {len(events)} in 24h",
                   evidence=evidence, metrics=metrics)


def failed_payments(intents: list[dict[str, Any]], max_rate: float) -> CheckResult:
    failed = [i for i in intents if i.get("last_payment_error") or i.get("status") == "canceled"]
    codes = Counter()
    system = 0
    for intent in failed:
        error = intent.get("last_payment_error") or {}
        codes[str(error.get("decline_code") or error.get("code") or intent.get("cancellation_reason") or "?")] += 1
        system += error.get("type") in SYSTEM_ERROR_TYPES
    rate = len(failed) / len(intents) if intents else 0.0
    evidence = {"payment_intents": len(intents), "failed": len(failed), "codes": dict(codes.most_common(6)),
                "system_errors": system}
    metrics = {"failed_rate": round(rate, 4), "failed": len(failed)}
    if system:
        return _result("failed_payments", "fail", f"{system} payment(s) failed with API/processing errors "
                       f"({', '.join(codes)})", "payment_errors_system", evidence=evidence, metrics=metrics)
    if intents and rate > max_rate:
        return _result("failed_payments", "warn", f"{rate:.0%} of {len(intents)} payments failed in 24h "
                       f"(codes: {', '.join(f'{k} x{v}' for k, v in codes.most_common(3))})", "high_decline_rate",
                       evidence=evidence, metrics=metrics)
    return _result("failed_payments", "ok", f"{len(failed)} of {len(intents)} payments failed in 24h ({rate:.0%})",
                   evidence=evidence, metrics=metrics)


def daraja_key(body: Any) -> CheckResult:
    if isinstance(body, dict) and body.get("access_token"):
        return _result("daraja_key", "ok", f"Daraja issued a token (expires in {body.get('expires_in', '?')}s)",
                       provider="mpesa")
    return _result("daraja_key", "fail", "Daraja OAuth answered without an access_token", "daraja_key_rejected",
                   provider="mpesa")


def callbacks(probes: list[tuple[str, int | None, str | None]]) -> CheckResult:
    """probes: (url, HTTP status or None, error or None). Any answer below 500 counts as reachable."""
    bad = [f"{u} ({e or f'HTTP {s}'})" for u, s, e in probes if e or (s or 0) >= 500]
    evidence = {"callbacks": [f"{u} -> {s or e}" for u, s, e in probes], "unreachable": bad}
    if bad:
        return _result("mpesa_callbacks", "fail", f"{len(bad)} callback URL(s) do not answer: {bad[0]}",
                       "callback_unreachable", provider="mpesa", evidence=evidence)
    return _result("mpesa_callbacks", "ok", f"{len(probes)} callback URL(s) answer", provider="mpesa",
                   evidence=evidence)


def stk_result(checkout_id: str, body: dict[str, Any]) -> CheckResult:
    code = str(body.get("errorCode") or body.get("ErrorCode") or "")
    evidence = {"checkout_request_id": checkout_id, **{k: body.get(k) for k in ("ResultCode", "ResultDesc", "errorCode")
                                                         if body.get(k) is not None}}
    if code == "500.001.1001":
        return _result("mpesa_transaction", "warn", f"{checkout_id}: still being processed (500.001.1001 = pending)",
                       "mpesa_pending", provider="mpesa", evidence=evidence)
    result = str(body.get("ResultCode", ""))
    meaning = STK_RESULTS.get(result, body.get("ResultDesc") or "unknown result")
    if result == "0":
        return _result("mpesa_transaction", "ok", f"{checkout_id}: paid", provider="mpesa", evidence=evidence)
    status = "warn" if result in CUSTOMER_STK else "fail"
    return _result("mpesa_transaction", status, f"{checkout_id}: ResultCode {result or '?'} ({meaning})", "mpesa_failed",
                   provider="mpesa", evidence=evidence)
