"""Sentry Web API (provider-apis.md section 2): connection `sentry_api`, password = auth token,
extra: organization, optional project (numeric id), environment; host for self-hosted/region.
An organization in Sentry's EU region lives on https://de.sentry.io (US: https://sentry.io or
https://us.sentry.io): on the other host it is 404, and the error says so."""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook
from maintenance.hooks.http_policy import HTTP_4XX, MALFORMED, ProviderError

MAX_PAGES = 10
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next";\s*results="true"')


def org_not_found(host: str, organization: str, conn_id: str) -> str:
    """What a 404 for the organization most likely means: it lives in the other region."""
    other = ("https://sentry.io", "US") if host.startswith("de.") else ("https://de.sentry.io", "EU")
    return (f"Sentry on {host} has no organization '{organization}' (an organization in the {other[1]} region "
            f"is on {other[0]}: set it as the host of connection '{conn_id}')")


class SentryHook(PolicyHttpHook):
    default_conn_name = "sentry_api"
    default_host = "https://sentry.io"
    auth_class = BearerAuth
    own_extras = ("organization", "project", "environment")

    def _extra(self, key: str) -> Any:
        return self.get_connection(self.http_conn_id).extra_dejson.get(key)

    def _scope(self) -> dict[str, Any]:
        params: dict[str, Any] = {"project": self._extra("project") or "-1"}
        if self._extra("environment"):
            params["environment"] = self._extra("environment")
        return params

    @property
    def organization(self) -> str:
        org = self._extra("organization")
        if not org:
            raise ProviderError(HTTP_4XX, f"connection '{self.http_conn_id}' has no extra.organization")
        return org

    def _org_request(self, url: str, **kwargs: Any) -> Any:
        """A call under /organizations/{org}/: a 404 there most often means the organization is
        in the other region, so the error names the host that was asked."""
        try:
            return self.request("GET", url, **kwargs)
        except ProviderError as exc:
            if exc.status != 404:
                raise
            host = urlsplit(self.base_url or self.default_host).netloc or self.base_url
            raise ProviderError(exc.reason, f"{exc}; {org_not_found(host, self.organization, self.http_conn_id)}",
                                status=exc.status, conn_id=exc.conn_id, attempts=exc.attempts) from None

    def issues(self, query: str, stats_period: str = "24h", limit: int = 100) -> list[dict[str, Any]]:
        """Issues matching a search, following the Link header's cursor (bounded)."""
        url: str | None = f"/api/0/organizations/{self.organization}/issues/"
        params: dict[str, Any] | None = {**self._scope(), "query": query, "statsPeriod": stats_period,
                                         "limit": limit, "sort": "freq"}
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                break
            body, response = self._org_request(url, params=params, with_response=True)
            if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
                raise ProviderError(MALFORMED, f"GET {urlsplit(url).path}: expected a JSON list of issues",
                                    conn_id=self.http_conn_id)
            found.extend(body)
            match = _NEXT.search(response.headers.get("Link", ""))
            url, params = (match.group(1), None) if match else (None, None)
        return found

    def hourly_errors(self, stats_period: str = "24h") -> list[int]:
        """Accepted error events per hour (stats_v2), oldest first."""
        body = self._org_request(f"/api/0/organizations/{self.organization}/stats_v2/", params={
            **self._scope(), "field": "sum(quantity)", "groupBy": "outcome", "category": "error",
            "statsPeriod": stats_period, "interval": "1h"})
        try:
            for group in body.get("groups", []):
                if group.get("by", {}).get("outcome") == "accepted":
                    return [int(v or 0) for v in group.get("series", {}).get("sum(quantity)", [])]
        except (AttributeError, TypeError, ValueError):
            raise ProviderError(MALFORMED, "stats_v2: unexpected answer shape (expected groups[].series)",
                                conn_id=self.http_conn_id) from None
        return []

    def errors_between(self, start: Any, end: Any) -> int:
        """Accepted error events between two aware datetimes (stats_v2 totals; issue 19). Sentry
        counts in its rollup (1h at least), so a window shorter than an hour reads the hour
        buckets that cover it."""
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        body = self.get_json(f"/api/0/organizations/{self.organization}/stats_v2/", params={
            **self._scope(), "field": "sum(quantity)", "groupBy": "outcome", "category": "error",
            "start": start.strftime(fmt), "end": end.strftime(fmt), "interval": "1h"})
        try:
            for group in body.get("groups", []):
                if group.get("by", {}).get("outcome") == "accepted":
                    return int(group.get("totals", {}).get("sum(quantity)") or 0)
        except (AttributeError, TypeError, ValueError):
            raise ProviderError(MALFORMED, "stats_v2: unexpected answer shape (expected groups[].totals)",
                                conn_id=self.http_conn_id) from None
        return 0
