"""Payment providers' APIs, for reachability and credential checks (provider-apis.md 3, 4)."""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook


class StripeApiHook(PolicyHttpHook):
    """Stripe REST API; connection `stripe_default`: password = secret key, host = API base."""

    default_conn_name = "stripe_default"
    default_host = "https://api.stripe.com"
    auth_class = BearerAuth

    def balance(self) -> dict[str, Any]:
        return self.get_json("/v1/balance")


class DarajaHook(PolicyHttpHook):
    """Safaricom Daraja; connection `mpesa_daraja`: login/password = consumer key/secret (HTTP basic)."""

    default_conn_name = "mpesa_daraja"
    default_host = "https://sandbox.safaricom.co.ke"

    def oauth_token(self) -> dict[str, Any]:
        return self.get_json("/oauth/v1/generate", params={"grant_type": "client_credentials"})


# -- runbook_payments (issue 10) ------------------------------------------------------------------
def stk_query(hook: DarajaHook, checkout_request_id: str, shortcode: str, passkey: str) -> dict[str, Any]:
    """POST /mpesa/stkpushquery/v1/query. The '500.001.1001 being processed' answer is returned as a
    body (it means pending), not raised; other failures raise ProviderError."""
    import base64
    from datetime import datetime, timezone

    from maintenance.hooks.http_policy import ProviderError, RetryPolicy

    token = str(hook.oauth_token().get("access_token", ""))
    hook._secrets.extend([token, passkey])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    body = {"BusinessShortCode": shortcode, "Timestamp": stamp, "CheckoutRequestID": checkout_request_id,
            "Password": base64.b64encode(f"{shortcode}{passkey}{stamp}".encode()).decode()}
    policy, hook.policy = hook.policy, RetryPolicy(timeout=hook.policy.timeout, attempts=1)
    try:
        return hook.request("POST", "/mpesa/stkpushquery/v1/query", json=body, auth=BearerAuth(password=token))
    except ProviderError as exc:
        text = str(exc).lower()
        if exc.status == 500 and ("being processed" in text or "lock subscriber" in text):
            return {"errorCode": "500.001.1001", "errorMessage": str(exc).rsplit(": ", 1)[-1]}
        raise
    finally:
        hook.policy = policy


def stripe_client(conn_id: str = "stripe_default", timeout: float = 10.0) -> tuple[Any, str]:
    """(stripe.StripeClient on the connection's API base, the key's mode 'live'|'test'|'?')."""
    import stripe
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    key = connection.password or ""
    base = connection.host or "https://api.stripe.com"
    if "://" not in base:
        base = f"https://{base}"
    if connection.port:
        base = f"{base}:{connection.port}"
    client = stripe.StripeClient(key, base_addresses={"api": base.rstrip("/")}, max_network_retries=2,
                                 http_client=stripe.RequestsClient(timeout=timeout))
    mode = "live" if "_live_" in key else "test" if "_test_" in key else "?"
    return client, mode
