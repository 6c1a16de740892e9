"""Core Web Vitals sources and Vercel (provider-apis.md section 6, next-anchors.md section 4).

CrUX (connection `crux_api`: password = Google API key; host defaults to the public API):
POST /v1/records:queryRecord and /v1/records:queryHistoryRecord, the key as `key=`; 404 means
no record (too little traffic), which is an answer, not an error.
PageSpeed Insights v5 (connection `pagespeed_api`, optional; key = its password, else the CrUX key).
Vercel (connection `vercel_api`: password = token; extra: team_id, project_id): GET /v7/deployments.
"""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook
from maintenance.hooks.http_policy import HTTP_4XX, MALFORMED, ProviderError
from maintenance.hooks.public import PublicApiHook

MAX_PAGES = 20


class CruxHook(PolicyHttpHook):
    default_conn_name = "crux_api"
    default_host = "https://chromeuxreport.googleapis.com"

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        session = super().get_conn(headers, extra_options)
        session.auth = None                 # the key travels as ?key=, never as basic auth
        return session

    @property
    def key(self) -> str:
        return self.get_connection(self.http_conn_id).password or ""

    def _query(self, route: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            answer = self.request("POST", f"/v1/records:{route}", params={"key": self.key}, json=body)
        except ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("record"), dict):
            raise ProviderError(MALFORMED, f"CrUX {route}: no record in the answer", conn_id=self.http_conn_id)
        return answer

    def record(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return self._query("queryRecord", body)

    def history(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return self._query("queryHistoryRecord", body)


class PsiHook(PublicApiHook):
    def __init__(self, conn_id: str = "pagespeed_api", key: str = "", **kwargs: Any) -> None:
        super().__init__(conn_id, base_url="https://www.googleapis.com", **kwargs)
        self.fallback_key = key

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        session = super().get_conn(headers, extra_options)
        session.auth = None
        return session

    def run(self, url: str, strategy: str = "MOBILE") -> dict[str, Any]:
        key = self.get_connection(self.http_conn_id).password or self.fallback_key
        # enum values as the v5 discovery document has them: upper case (PERFORMANCE, MOBILE/DESKTOP)
        params = {"url": url, "strategy": strategy.upper(), "category": "PERFORMANCE", **({"key": key} if key else {})}
        self.session  # noqa: B018 - built first: it resets the secrets list
        self._secrets = [s for s in (key, *self._secrets) if s]
        answer = self.request("GET", "/pagespeedonline/v5/runPagespeed", params=params)
        if not isinstance(answer, dict):
            raise ProviderError(MALFORMED, "PSI: expected a JSON object")
        return answer


class VercelHook(PolicyHttpHook):
    default_conn_name = "vercel_api"
    default_host = "https://api.vercel.com"
    auth_class = BearerAuth
    own_extras = ("team_id", "project_id")

    def _scope(self) -> dict[str, Any]:
        extra = self.get_connection(self.http_conn_id).extra_dejson
        params = {}
        if extra.get("team_id"):
            params["teamId"] = extra["team_id"]
        if extra.get("project_id"):
            params["projectId"] = extra["project_id"]
        return params

    def deployments(self, since_ms: int, until_ms: int, target: str = "production") -> list[dict[str, Any]]:
        """Deployments created in [since, until], newest first, following pagination.next (as until)."""
        found: list[dict[str, Any]] = []
        until: int | None = until_ms
        for _ in range(MAX_PAGES):
            page = self.get_json("/v7/deployments", params={**self._scope(), "target": target, "limit": 100,
                                                             "since": since_ms, "until": until})
            if not isinstance(page, dict) or not isinstance(page.get("deployments"), list):
                raise ProviderError(MALFORMED, "Vercel /v7/deployments: no deployments list", conn_id=self.http_conn_id)
            found += [d for d in page["deployments"] if isinstance(d, dict)]
            following = (page.get("pagination") or {}).get("next")
            if not following or not page["deployments"]:
                break
            until = int(following)
        return found

    def current_production(self) -> dict[str, Any] | None:
        """The newest READY production deployment (what production serves)."""
        page = self.get_json("/v7/deployments", params={**self._scope(), "target": "production", "state": "READY",
                                                         "limit": 1})
        items = page.get("deployments") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise ProviderError(HTTP_4XX if items is None else MALFORMED, "Vercel: no deployments list",
                                conn_id=self.http_conn_id)
        return items[0] if items else None
