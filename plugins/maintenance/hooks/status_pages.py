"""Public status pages and other unauthenticated URLs (Statuspage JSON, Stripe's /current, an
egress-IP echo), through the one HTTP policy."""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http_policy import DEFAULT_POLICY, RetryPolicy, send


def get(url: str, *, expect_json: bool = True, policy: RetryPolicy = DEFAULT_POLICY, **kwargs: Any) -> Any:
    """GET a public URL: parsed JSON (or the response); raises ProviderError."""
    import requests

    with requests.Session() as session:
        session.headers["User-Agent"] = "maintenance-runbook/1.0"
        return send(session, "GET", url, policy=policy, expect_json=expect_json, **kwargs)
