"""Credential probes for the monthly audit: ONE cheap authenticated call per provider, through the
provider's own hook (so the one HTTP policy classifies the failure: unauthorized is not retried,
timeouts and 5xx are). Each probe returns a short description of what answered, or raises
ProviderError. The Slack webhook is not probed: posting is its only call, and the audit's own
summary is that call.
"""

from __future__ import annotations

from typing import Callable

from maintenance.hooks.http_policy import MALFORMED, ProviderError, RetryPolicy

# A credential probe answers quickly or not at all: two tries, short back-off.
PROBE_POLICY = RetryPolicy(timeout=10, attempts=2, backoff_base=0.5, backoff_max=2.0)


def _atlas(conn_id: str, target: str) -> str:
    from maintenance.hooks.atlas import AtlasHook

    hook = AtlasHook(conn_id, policy=PROBE_POLICY)
    path = f"/api/atlas/v2/groups/{hook.project_id}/accessList"
    hook.call("GET", path, params={"pageNum": 1, "itemsPerPage": 1})
    return f"Atlas project {hook.project_id} answered"


def _sentry(conn_id: str, target: str) -> str:
    from maintenance.hooks.sentry import SentryHook

    hook = SentryHook(conn_id, policy=PROBE_POLICY)
    body = hook.get_json(f"/api/0/organizations/{hook.organization}/")
    if not isinstance(body, dict):
        raise ProviderError(MALFORMED, "Sentry organization: expected a JSON object", conn_id=conn_id)
    return f"Sentry organization {body.get('slug') or hook.organization} answered"


def _stripe(conn_id: str, target: str) -> str:
    from maintenance.hooks.payments import StripeApiHook

    body = StripeApiHook(conn_id, policy=PROBE_POLICY).balance()
    if not isinstance(body, dict) or body.get("object") != "balance":
        raise ProviderError(MALFORMED, "Stripe /v1/balance answered without a balance object", conn_id=conn_id)
    return f"Stripe key valid ({'live' if body.get('livemode') else 'test'} mode)"


def _mpesa(conn_id: str, target: str) -> str:
    from maintenance.hooks.payments import DarajaHook

    body = DarajaHook(conn_id, policy=PROBE_POLICY).oauth_token()
    if not isinstance(body, dict) or not body.get("access_token"):
        raise ProviderError(MALFORMED, "Daraja OAuth answered without an access_token", conn_id=conn_id)
    return "Daraja OAuth token issued"


def _vercel(conn_id: str, target: str) -> str:
    from maintenance.hooks.vitals import VercelHook

    current = VercelHook(conn_id, policy=PROBE_POLICY).current_production()
    return "Vercel answered" + (f" (production: {current.get('url') or current.get('uid')})" if current else "")


def _uptimerobot(conn_id: str, target: str) -> str:
    from maintenance.hooks.monitors import UptimeRobotHook

    UptimeRobotHook(conn_id, policy=PROBE_POLICY).get_json("/v3/monitors", params={"limit": 1})
    return "UptimeRobot answered"


def _pingdom(conn_id: str, target: str) -> str:
    from maintenance.hooks.monitors import PingdomHook

    PingdomHook(conn_id, policy=PROBE_POLICY).get_json("/api/3.1/checks", params={"limit": 1, "offset": 0})
    return "Pingdom answered"


def _crux(conn_id: str, target: str) -> str:
    from maintenance.hooks.vitals import CruxHook

    record = CruxHook(conn_id, policy=PROBE_POLICY).record({"origin": target.rstrip("/")})
    return "CrUX key valid" + ("" if record else f" (no record for {target}: too little traffic)")


def _mailgun(conn_id: str, target: str) -> str:
    from maintenance.hooks.email import MailgunHook

    hook = MailgunHook(conn_id, policy=PROBE_POLICY)
    if target:
        hook.domain(target)
    else:
        hook.get_json("/v4/domains", params={"limit": 1})
    return f"Mailgun answered{f' for {target}' if target else ''}"


def _sendgrid(conn_id: str, target: str) -> str:
    from maintenance.hooks.email import SendGridHook

    body = SendGridHook(conn_id, policy=PROBE_POLICY).get_json("/v3/scopes")
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(scopes, list):
        raise ProviderError(MALFORMED, "SendGrid /v3/scopes: no scopes list", conn_id=conn_id)
    return f"SendGrid key valid ({len(scopes)} scopes)"


def _r2(conn_id: str, target: str) -> str:
    from maintenance.hooks.cloudflare import CloudflareHook

    CloudflareHook(conn_id, policy=PROBE_POLICY).lifecycle_rules(target)
    return f"Cloudflare R2 bucket {target} answered"


def _s3(conn_id: str, target: str) -> str:
    from maintenance.hooks.storage import client_error, s3_client

    try:
        s3_client(conn_id).head_bucket(Bucket=target)
    except Exception as exc:  # noqa: BLE001 - botocore errors become a classified ProviderError
        reason, message = client_error(exc)   # a 403 is already unauthorized there
        raise ProviderError(reason, f"HeadBucket {target}: {message}", conn_id=conn_id) from None
    return f"bucket {target} answered"


def _mongo(conn_id: str, target: str) -> str:
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from pymongo.errors import PyMongoError

    from maintenance.hooks.mongo import mongo_error

    try:
        with MongoHook(mongo_conn_id=conn_id) as hook:
            hook.get_conn().admin.command("ping")
    except PyMongoError as exc:
        reason, text = mongo_error(exc)
        raise ProviderError(reason, f"MongoDB ping: {text}", conn_id=conn_id) from None
    return "MongoDB answered ping (authenticated)"


PROBES: dict[str, Callable[[str, str], str]] = {
    "atlas": _atlas, "sentry": _sentry, "stripe": _stripe, "mpesa": _mpesa, "vercel": _vercel,
    "uptimerobot": _uptimerobot, "pingdom": _pingdom, "crux": _crux, "mailgun": _mailgun, "sendgrid": _sendgrid,
    "r2": _r2, "s3": _s3, "mongo": _mongo,
}


def probe(kind: str, conn_id: str, target: str = "") -> str:
    """One authenticated call to the provider; what answered, or ProviderError."""
    return PROBES[kind](conn_id, target)
