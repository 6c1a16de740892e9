"""Mailgun and SendGrid APIs (provider-apis.md section 5), on the shared HTTP policy.

mailgun_default: password = private API key (HTTP Basic, user "api"), host = https://api.mailgun.net
or https://api.eu.mailgun.net (a domain lives in one region). sendgrid_default: password = API key
(Bearer), host = https://api.sendgrid.com.
"""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook


# Metrics API counts the email checks read (names from its `metrics` enum)
METRICS = ("accepted_outgoing_count", "delivered_count", "permanent_failed_count", "hard_bounces_count",
           "delayed_bounce_count", "suppressed_bounces_count", "complained_count")


class _MailgunAuth:
    def __init__(self, login: str | None = None, password: str | None = None) -> None:
        import requests

        self.auth = requests.auth.HTTPBasicAuth("api", password or login or "")

    def __call__(self, request: Any) -> Any:
        return self.auth(request)


class MailgunHook(PolicyHttpHook):
    default_conn_name = "mailgun_default"
    default_host = "https://api.mailgun.net"
    auth_class = _MailgunAuth

    def domain(self, domain: str) -> dict[str, Any]:
        return self.get_json(f"/v4/domains/{domain}")

    def metrics(self, domain: str, duration: str = "24h") -> dict[str, Any]:
        """The domain's totals from the Metrics API (POST /v1/analytics/metrics), which replaces the
        deprecated stats API: one query, filtered to the domain, with its aggregates."""
        return self.request("POST", "/v1/analytics/metrics", json={
            "duration": duration, "resolution": "hour", "metrics": list(METRICS), "include_aggregates": True,
            "filter": {"AND": [{"attribute": "domain", "comparator": "=",
                                "values": [{"label": domain, "value": domain}]}]}})

    def stats(self, domain: str, duration: str = "24h") -> dict[str, Any]:
        """Deprecated stats totals: the fallback for an account the Metrics API refuses."""
        events = ["accepted", "delivered", "failed", "complained"]
        return self.get_json(f"/v3/{domain}/stats/total", params=[("event", e) for e in events]
                             + [("duration", duration), ("resolution", "hour")])

    def bounces(self, domain: str, max_pages: int = 10) -> list[dict[str, Any]]:
        url: str | None = f"/v3/{domain}/bounces"
        params: dict[str, Any] | None = {"limit": 1000}
        items: list[dict[str, Any]] = []
        for _ in range(max_pages):
            body = self.get_json(url, params=params)
            page = body.get("items") or []
            items.extend(i for i in page if isinstance(i, dict))
            url, params = ((body.get("paging") or {}).get("next"), None)
            if not page or not url:
                break
        return items


class SendGridHook(PolicyHttpHook):
    default_conn_name = "sendgrid_default"
    default_host = "https://api.sendgrid.com"
    auth_class = BearerAuth

    def scopes(self) -> list[str]:
        return list(self.get_json("/v3/scopes").get("scopes") or [])

    def domains(self) -> list[dict[str, Any]]:
        body = self.get_json("/v3/whitelabel/domains")
        return body if isinstance(body, list) else []

    def stats(self, start_date: str) -> list[dict[str, Any]]:
        body = self.get_json("/v3/stats", params={"start_date": start_date, "aggregated_by": "day"})
        return body if isinstance(body, list) else []

    def bounces(self, start_time: int) -> list[dict[str, Any]]:
        body = self.get_json("/v3/suppression/bounces", params={"start_time": start_time, "limit": 500},
                             headers={"Accept": "application/json"})
        return body if isinstance(body, list) else []
