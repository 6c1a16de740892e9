"""Local CrUX (queryRecord, queryHistoryRecord), PageSpeed Insights v5 and Vercel /v7/deployments
in their real shapes (provider-apis.md 6, next-anchors.md 4): CLS a string in CrUX, x100 in PSI;
404 "chrome ux report data not found" for an origin without a record."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from servers import LocalServer, Reply, Request, ServedApp, json_reply

KEY = "AIzaTestKEY123"
VERCEL_TOKEN = "vercel-token-SECRET"
# runPagespeed's enum parameters as the v5 discovery document lists them (values are upper case)
PSI_ENUMS = {"category": {"CATEGORY_UNSPECIFIED", "ACCESSIBILITY", "BEST_PRACTICES", "PERFORMANCE", "PWA", "SEO"},
             "strategy": {"STRATEGY_UNSPECIFIED", "DESKTOP", "MOBILE"}}


def crux_record(origin: str, lcp: int, inp: int, cls: str) -> dict[str, Any]:
    def metric(p75: Any, bounds: tuple[Any, Any]) -> dict[str, Any]:
        return {"histogram": [{"start": 0, "end": bounds[0], "density": 0.8}, {"start": bounds[0], "end": bounds[1],
                                                                                "density": 0.15},
                              {"start": bounds[1], "density": 0.05}], "percentiles": {"p75": p75}}
    return {"record": {"key": {"origin": origin, "formFactor": "PHONE"}, "metrics": {
        "largest_contentful_paint": metric(lcp, (2500, 4000)), "interaction_to_next_paint": metric(inp, (200, 500)),
        "cumulative_layout_shift": {"histogram": [{"start": "0.00", "end": "0.10", "density": 0.9}],
                                    "percentiles": {"p75": cls}}},
        "collectionPeriod": {"firstDate": {"year": 2026, "month": 10, "day": 31},
                             "lastDate": {"year": 2026, "month": 11, "day": 27}}}}


def crux_history(origin: str, lcp: list[Any], inp: list[Any], cls: list[Any]) -> dict[str, Any]:
    return {"record": {"key": {"origin": origin}, "metrics": {
        "largest_contentful_paint": {"percentilesTimeseries": {"p75s": lcp}},
        "interaction_to_next_paint": {"percentilesTimeseries": {"p75s": inp}},
        "cumulative_layout_shift": {"percentilesTimeseries": {"p75s": cls}}},
        "collectionPeriods": [{"firstDate": {}, "lastDate": {}} for _ in lcp]}}


class VitalsServer(ServedApp):
    """CrUX + PSI on one server (both are googleapis hosts); `records`/`histories` by origin or URL."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, dict[str, Any]] = {}
        self.psi: dict[str, dict[str, Any]] = {}
        self.psi_queries: list[dict[str, list[str]]] = []
        self.server = LocalServer(self)

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": KEY})

    def __call__(self, request: Request) -> Reply:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        if query.get("key") != [KEY]:
            return json_reply({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                         "status": "INVALID_ARGUMENT"}}, 400)
        if parts.path in ("/v1/records:queryRecord", "/v1/records:queryHistoryRecord"):
            body = request.json()
            target = body.get("origin") or body.get("url")
            store = self.records if parts.path.endswith("queryRecord") else self.histories
            if target not in store:
                return json_reply({"error": {"code": 404, "message": "chrome ux report data not found",
                                             "status": "NOT_FOUND"}}, 404)
            return json_reply(store[target])
        if parts.path == "/pagespeedonline/v5/runPagespeed":
            self.psi_queries.append(query)
            for name, allowed in PSI_ENUMS.items():
                for value in query.get(name, []):
                    if value not in allowed:
                        return json_reply({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                     "message": f"Invalid value at '{name}' (TYPE_ENUM), \"{value}\""}},
                                          400)
            url = query.get("url", [""])[0]
            return json_reply(self.psi.get(url, {"id": url, "lighthouseResult": {}}))
        return json_reply({"error": {"code": 404, "message": "not found"}}, 404)


def psi_answer(url: str, lcp: int, inp: int, cls_x100: int) -> dict[str, Any]:
    def metric(value: int, category: str) -> dict[str, Any]:
        return {"percentile": value, "distributions": [], "category": category}
    return {"id": url, "loadingExperience": {"id": url, "metrics": {
        "LARGEST_CONTENTFUL_PAINT_MS": metric(lcp, "SLOW" if lcp > 4000 else "FAST"),
        "INTERACTION_TO_NEXT_PAINT": metric(inp, "FAST"),
        "CUMULATIVE_LAYOUT_SHIFT_SCORE": metric(cls_x100, "AVERAGE")}, "overall_category": "AVERAGE"},
        "lighthouseResult": {"categories": {"performance": {"score": 0.7}}}}


class VercelServer(ServedApp):
    """Vercel's REST API for one team: GET /v7/deployments (Bearer token, teamId scope, projectId/target/
    state filters, since/until, paged by `until`); issue 19: GET /v13/deployments/{id}, GET
    /v3/deployments/{id}/events, GET /v9/projects/{id} (targets.production: what production serves)
    and POST /v1/projects/{id}/rollback/{deploymentId} (201; `rollback_status` programs a refusal)."""

    def __init__(self, team: str = "team_acme", page_size: int = 2, project: str = "prj_1") -> None:
        self.team, self.page_size, self.project = team, page_size, project
        self.deployments: list[dict[str, Any]] = []
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.serving: str | None = None        # uid production serves; None: the newest READY one
        self.rollbacks: list[tuple[str, dict[str, list[str]]]] = []
        self.rollback_status = 201
        self.queries: list[dict[str, list[str]]] = []
        self.server = LocalServer(self)

    def connection_json(self, token: str = VERCEL_TOKEN, **extra: str) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": token,
                           "extra": {"team_id": self.team, **extra}})

    def add(self, item: dict[str, Any]) -> dict[str, Any]:
        self.deployments.append(item)
        return item

    def find(self, uid: str) -> dict[str, Any] | None:
        return next((d for d in self.deployments if d["uid"] == uid or d["url"] == uid), None)

    def serving_deployment(self) -> dict[str, Any] | None:
        if self.serving:
            return self.find(self.serving)
        ready = [d for d in self.deployments if d["readyState"] == "READY" and d.get("target") == "production"]
        return max(ready, key=lambda d: d["created"]) if ready else None

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {VERCEL_TOKEN}":
            return json_reply({"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": True}}, 403)
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        self.queries.append(query)
        if query.get("teamId") != [self.team]:
            return json_reply({"error": {"code": "forbidden", "message": "You don't have permission"}}, 403)
        path = parts.path.split("/")
        if parts.path == "/v7/deployments" and request.method == "GET":
            return self._list(query)
        if len(path) == 4 and path[1] == "v13" and path[2] == "deployments" and request.method == "GET":
            found = self.find(path[3])
            return json_reply({**found, "id": found["uid"]}) if found else self._not_found("deployment")
        if len(path) == 5 and path[1] == "v3" and path[4] == "events" and request.method == "GET":
            found = self.find(path[3])
            return json_reply(self.events.get(found["uid"], [])) if found else self._not_found("deployment")
        if len(path) == 4 and path[1:3] == ["v9", "projects"] and request.method == "GET":
            if path[3] != self.project:
                return self._not_found("project")
            serving = self.serving_deployment()
            return json_reply({"id": self.project, "name": "web", "targets": {"production": (
                {"id": serving["uid"], "url": serving["url"], "readyState": serving["readyState"]}
                if serving else None)}})
        if len(path) == 6 and path[1:3] == ["v1", "projects"] and path[4] == "rollback" and request.method == "POST":
            self.rollbacks.append((path[5], query))
            if path[3] != self.project:
                return self._not_found("project")
            if self.rollback_status != 201:
                return json_reply({"error": {"code": "rollback_failed",
                                             "message": "Deployment is not eligible for rollback"}},
                                  self.rollback_status)
            target = self.find(path[5])
            if target is None or target["readyState"] != "READY":
                return json_reply({"error": {"code": "invalid_deployment", "message": "Deployment not ready"}}, 422)
            self.serving = target["uid"]
            return 201, {"Content-Type": "application/json"}, "{}"
        return self._not_found("page")

    @staticmethod
    def _not_found(what: str) -> Reply:
        return json_reply({"error": {"code": "not_found", "message": f"The {what} could not be found"}}, 404)

    def _list(self, query: dict[str, list[str]]) -> Reply:
        items = sorted(self.deployments, key=lambda d: -d["created"])
        if "projectId" in query:
            items = [d for d in items if d.get("projectId") == query["projectId"][0]]
        if "target" in query:
            items = [d for d in items if d.get("target") == query["target"][0]]
        if "state" in query:
            items = [d for d in items if d["readyState"] in query["state"][0].split(",")]
        if "since" in query:
            items = [d for d in items if d["created"] >= int(query["since"][0])]
        if "until" in query:
            items = [d for d in items if d["created"] <= int(query["until"][0])]
        limit = min(int(query.get("limit", ["20"])[0]), self.page_size)
        page = items[:limit]
        more = len(items) > limit
        return json_reply({"pagination": {"count": len(page), "next": page[-1]["created"] - 1 if more else None,
                                          "prev": None}, "deployments": page})


def build_events(error_line: str) -> list[dict[str, Any]]:
    """A failed build's log as GET /v3/deployments/{id}/events returns it."""
    lines = [("command", "Running \"npm run build\""), ("stdout", "> next build"),
             ("stderr", "warn - no cache found"), ("stderr", error_line),
             ("stderr", "Error: Command \"npm run build\" exited with 1")]
    return [{"type": kind, "created": 1_754_000_000_000 + i, "payload": {"text": text, "deploymentId": "x"}}
            for i, (kind, text) in enumerate(lines)]


def deployment(uid: str, created_ms: int, state: str = "READY", target: str = "production",
               sha: str | None = None) -> dict[str, Any]:
    item = {"uid": uid, "meta": {"githubCommitSha": sha or (uid.encode().hex() * 40)[:40],
                                 "githubCommitMessage": f"change {uid}"}, "name": "web", "url": f"web-{uid}.vercel.app", "projectId": "prj_1", "created": created_ms,
            "createdAt": created_ms, "readyState": state, "state": state, "target": target,
            "inspectorUrl": f"https://vercel.com/acme/web/{uid}", "creator": {"uid": "u1", "username": "dev"}}
    if state == "ERROR":
        item.update(errorCode="BUILD_FAILED", errorMessage="Command \"npm run build\" exited with 1")
    return item
