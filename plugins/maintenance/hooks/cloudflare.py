"""Cloudflare REST API for R2 (provider-apis.md section 8): bucket lock rules and lifecycle.

Connection `cloudflare_api` (http): password = API token (Bearer); host defaults to
https://api.cloudflare.com/client/v4; extra: account_id, optional jurisdiction (eu, fedramp).
R2 has no S3 versioning, replication or object-lock API: these routes are its substitutes.
An error answer's errors[] messages (e.g. "The specified bucket does not exist. (code 10006)")
are in the ProviderError, so the result's summary says what Cloudflare said (http_policy._detail).
"""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook
from maintenance.hooks.http_policy import HTTP_4XX, MALFORMED, ProviderError

OWN_EXTRA = ("account_id", "jurisdiction")


class CloudflareHook(PolicyHttpHook):
    default_conn_name = "cloudflare_api"
    default_host = "https://api.cloudflare.com/client/v4"
    auth_class = BearerAuth
    own_extras = OWN_EXTRA
    conn_type = "http"
    hook_name = "Cloudflare API"

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        session = super().get_conn(headers, extra_options)
        connection = self.get_connection(self.http_conn_id)
        jurisdiction = connection.extra_dejson.get("jurisdiction")
        if jurisdiction:
            session.headers["cf-r2-jurisdiction"] = str(jurisdiction)
        return session

    @property
    def account_id(self) -> str:
        value = self.get_connection(self.http_conn_id).extra_dejson.get("account_id")
        if not value:
            raise ProviderError(HTTP_4XX, f"connection '{self.http_conn_id}' has no extra.account_id "
                                          "(the Cloudflare account that owns the R2 bucket)", conn_id=self.http_conn_id)
        return str(value)

    def _result(self, path: str) -> dict[str, Any]:
        body = self.request("GET", path)
        if not isinstance(body, dict) or body.get("success") is False:
            errors = body.get("errors") if isinstance(body, dict) else None
            detail = "; ".join(str(e.get("message", e)) + (f" (code {e['code']})" if e.get("code") is not None else "")
                               for e in errors or [] if isinstance(e, dict)) or "success=false"
            raise ProviderError(MALFORMED, f"GET {path}: {detail}", conn_id=self.http_conn_id)
        result = body.get("result")
        return result if isinstance(result, dict) else {}

    def lock_rules(self, bucket: str) -> list[dict[str, Any]]:
        rules = self._result(f"/accounts/{self.account_id}/r2/buckets/{bucket}/lock").get("rules")
        return [r for r in rules or [] if isinstance(r, dict)]

    def lifecycle_rules(self, bucket: str) -> list[dict[str, Any]]:
        rules = self._result(f"/accounts/{self.account_id}/r2/buckets/{bucket}/lifecycle").get("rules")
        return [r for r in rules or [] if isinstance(r, dict)]

    # -- reviews (issue 9): public access of a bucket ---------------------------------------------
    def managed_domain(self, bucket: str) -> dict[str, Any]:
        """The bucket's r2.dev public URL: {bucketId, domain, enabled}."""
        return self._result(f"/accounts/{self.account_id}/r2/buckets/{bucket}/domains/managed")

    def custom_domains(self, bucket: str) -> list[dict[str, Any]]:
        domains = self._result(f"/accounts/{self.account_id}/r2/buckets/{bucket}/domains/custom").get("domains")
        return [d for d in domains or [] if isinstance(d, dict)]
