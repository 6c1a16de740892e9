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
