"""Core Web Vitals sources and Vercel (provider-apis.md section 6, next-anchors.md section 4).

CrUX (connection `crux_api`: password = Google API key; host defaults to the public API):
POST /v1/records:queryRecord and /v1/records:queryHistoryRecord, the key as `key=`; 404 means
no record (too little traffic), which is an answer, not an error.
PageSpeed Insights v5 (connection `pagespeed_api`, optional; key = its password, else the CrUX key).
Vercel (connection `vercel_api`: password = token; extra: team_id, project_id, protection_bypass):
GET /v7/deployments; issue 19: GET /v13/deployments/{id}, GET /v3/deployments/{id}/events (the build
log), POST /v1/projects/{projectId}/rollback/{deploymentId} (provider-apis.md section 13).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
    own_extras = ("team_id", "project_id", "protection_bypass")

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

    # -- issue 19: post-deployment verification ------------------------------------------------
    @property
    def project_id(self) -> str:
        project = self.get_connection(self.http_conn_id).extra_dejson.get("project_id")
        if not project:
            raise ProviderError(HTTP_4XX, f"connection '{self.http_conn_id}' has no extra.project_id")
        return str(project)

    @property
    def protection_bypass(self) -> str:
        """The project's protection-bypass secret (x-vercel-protection-bypass), or ""."""
        return str(self.get_connection(self.http_conn_id).extra_dejson.get("protection_bypass") or "")

    def _team(self) -> dict[str, Any]:
        return {k: v for k, v in self._scope().items() if k == "teamId"}

    def serving_production(self) -> dict[str, Any] | None:
        """The deployment production serves now: the project's targets.production (right after a
        rollback too), else the newest READY production deployment."""
        project = self.get_json(f"/v9/projects/{quote(self.project_id, safe='')}", params=self._team())
        serving = ((project.get("targets") or {}).get("production") if isinstance(project, dict) else None) or {}
        if isinstance(serving, dict) and (serving.get("id") or serving.get("uid")):
            return {**serving, "uid": serving.get("uid") or serving.get("id")}
        return self.current_production()

    def newest_production(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest production deployments of the project, any state, newest first (one page)."""
        page = self.get_json("/v7/deployments", params={**self._scope(), "target": "production", "limit": limit})
        items = page.get("deployments") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise ProviderError(MALFORMED, "Vercel /v7/deployments: no deployments list", conn_id=self.http_conn_id)
        return [d for d in items if isinstance(d, dict)]

    def deployment(self, id_or_url: str) -> dict[str, Any]:
        answer = self.get_json(f"/v13/deployments/{quote(id_or_url, safe='')}", params=self._team())
        if not isinstance(answer, dict) or not answer.get("uid") and not answer.get("id"):
            raise ProviderError(MALFORMED, "Vercel /v13/deployments: not a deployment", conn_id=self.http_conn_id)
        return answer

    def events(self, id_or_url: str, limit: int = 2000) -> list[dict[str, Any]]:
        """The deployment's build log events, oldest first (each {type, created, payload{text}} or {text})."""
        answer = self.get_json(f"/v3/deployments/{quote(id_or_url, safe='')}/events",
                               params={**self._team(), "limit": limit, "builds": 1, "direction": "forward"})
        if not isinstance(answer, list):
            raise ProviderError(MALFORMED, "Vercel deployment events: expected a JSON list", conn_id=self.http_conn_id)
        return [e for e in answer if isinstance(e, dict)]

    def rollback(self, deployment_id: str, description: str) -> dict[str, Any]:
        """Point production at `deployment_id` (Instant Rollback). Not repeated blindly: after a
        retryable failure, production already serving the target counts as done."""
        from maintenance.hooks.http_policy import send

        def recover(_error: ProviderError) -> dict[str, Any] | None:
            try:
                serving = self.serving_production()
            except ProviderError:
                return None
            return {"recovered": True} if serving and serving.get("uid") == deployment_id else None

        url = self.url_from_endpoint(f"/v1/projects/{quote(self.project_id, safe='')}/rollback/"
                                     f"{quote(deployment_id, safe='')}")
        response = send(self.session, "POST", url, policy=self.policy, conn_id=self.http_conn_id,
                        secrets=self._secrets, params={**self._team(), "description": description[:200]},
                        recover=recover)
        return response if isinstance(response, dict) else {"status": response.status_code}
