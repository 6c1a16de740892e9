"""Local servers that speak the analytics providers' HTTP APIs (provider-apis.md section 7).

PlausibleServer: POST /api/v2/query with Bearer auth; metrics come back positionally in the
order asked; days without visits are left out of time:day results, as Plausible does
without include.time_labels. GA4Server: Google's service-account token endpoint (the JWT is
verified with the key's public half) and runReport, whose values are strings and whose
`rows` is absent when a range has no data. Both answer from a small deterministic dataset
that the tests also read, and can be told to fail (429, 5xx, 401, malformed JSON).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

from servers import LocalServer, Request, ServedApp

PAGES = {"/": 5, "/donate": 3, "/events": 2, "/about": 1}          # share of page views
SOURCES = {"Google": 6, "Direct / None": 3, "Twitter": 1}
GOALS = {"Donation": 0.04, "Signup": 0.02}
EMPTY_DAY = date(2026, 4, 28)                                     # no traffic at all that day


def visitors_on(day: date) -> int:
    return 0 if day == EMPTY_DAY else 100 + (day.toordinal() * 37) % 60


def pageviews_on(day: date) -> int:
    return 0 if day == EMPTY_DAY else 3 * visitors_on(day) + day.day


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class PlausibleServer(ServedApp):
    key = "plausible-KEY-secret"

    def __init__(self) -> None:
        self.faults: list[tuple[int, str]] = []   # (status, body) answered first, one per request
        self.server = LocalServer(self.app)

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": self.key})

    @property
    def queries(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.server.requests if r.path == "/api/v2/query"]

    def app(self, request: Request) -> tuple[int, dict[str, str], str]:
        if self.faults:
            status, body = self.faults.pop(0)
            return status, {"Content-Type": "application/json", "Retry-After": "0"}, body
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {"Content-Type": "application/json"}, json.dumps({"error": "Invalid API key"})
        if request.method != "POST" or request.path != "/api/v2/query":
            return 404, {}, "not found"
        query = request.json()
        if not all(k in query for k in ("site_id", "date_range", "metrics")):
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": "#: missing required properties"})
        span = days(*query["date_range"])
        metrics, dims = query["metrics"], query.get("dimensions") or []
        limit = (query.get("pagination") or {}).get("limit", 10000)
        rows = [(key, self.figures(span, key, dims)) for key in self.keys(span, dims)]
        rows = [(k, f) for k, f in rows if f["visitors"] or f["pageviews"] or not dims][:limit]
        results = [{"metrics": [f[m] for m in metrics], "dimensions": list(k)} for k, f in rows]
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"results": results, "meta": {}, "query": {**query, "date_range": [f"{span[0]}T00:00:00+00:00",
                                                                                f"{span[-1]}T23:59:59+00:00"]}})

    @staticmethod
    def keys(span: list[date], dims: list[str]) -> list[tuple[str, ...]]:
        if not dims:
            return [()]
        kind = dims[0]
        if kind == "time:day":
            return [(d.isoformat(),) for d in span]
        return [(k,) for k in {"event:page": PAGES, "visit:source": SOURCES, "event:goal": GOALS}[kind]]

    @staticmethod
    def figures(span: list[date], key: tuple[str, ...], dims: list[str]) -> dict[str, float]:
        if dims and dims[0] == "time:day":
            span = [date.fromisoformat(key[0])]
        visitors = sum(visitors_on(d) for d in span)
        pageviews = sum(pageviews_on(d) for d in span)
        figures = {"visitors": visitors, "pageviews": pageviews, "visits": round(visitors * 1.2),
                   "bounce_rate": 41.5 if len(span) == 7 else 44.0, "visit_duration": 95 if len(span) == 7 else 80,
                   "events": pageviews, "conversion_rate": 0.0}
        if dims and dims[0] == "event:page":
            share = PAGES[key[0]] / sum(PAGES.values())
            figures.update(visitors=round(visitors * share), pageviews=round(pageviews * share))
        elif dims and dims[0] == "visit:source":
            figures["visitors"] = round(visitors * SOURCES[key[0]] / sum(SOURCES.values()))
        elif dims and dims[0] == "event:goal":
            rate = GOALS[key[0]]
            figures.update(visitors=round(visitors * rate), events=round(visitors * rate * 1.5),
                           conversion_rate=round(rate * 100, 1))
        return figures


class GA4Server(ServedApp):
    """Token endpoint at /token, runReport at /v1beta/properties/<id>:runReport."""

    token = "ga4-access-TOKEN-secret"

    def __init__(self, property_id: str = "123456789") -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.property_id = property_id
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()).decode()
        self.faults: list[tuple[int, str]] = []
        self.no_data_before: date | None = None    # ranges starting before this have no rows at all
        self.server = LocalServer(self.app)
        self.assertions: list[dict[str, Any]] = []
        self.token_fields: dict[str, Any] = {}      # merged into the token endpoint's answer

    def key_json(self) -> str:
        return json.dumps({"type": "service_account", "project_id": "test", "private_key_id": "k1",
                           "private_key": self.private_pem, "client_email": "reports@test.iam.gserviceaccount.com",
                           "token_uri": f"{self.server.url}/token"})

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": self.key_json()})

    @property
    def reports(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.server.requests if r.path.endswith(":runReport")]

    def app(self, request: Request) -> tuple[int, dict[str, str], str]:
        import jwt

        json_type = {"Content-Type": "application/json"}
        if request.path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
            try:
                claims = jwt.decode(form.get("assertion", ""), self.private.public_key(), algorithms=["RS256"],
                                    audience=f"{self.server.url}/token")
            except jwt.InvalidTokenError as exc:
                return 400, json_type, json.dumps({"error": "invalid_grant", "error_description": str(exc)})
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or \
                    claims.get("scope") != "https://www.googleapis.com/auth/analytics.readonly":
                return 400, json_type, json.dumps({"error": "invalid_scope"})
            self.assertions.append(claims)
            return 200, json_type, json.dumps({"access_token": self.token, "expires_in": 3599, "token_type": "Bearer",
                                               **self.token_fields})
        if self.faults:
            status, body = self.faults.pop(0)
            return status, {**json_type, "Retry-After": "0"}, body
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, json_type, json.dumps({"error": {"code": 401, "message": "Request had invalid authentication "
                                                         "credentials.", "status": "UNAUTHENTICATED"}})
        if request.path != f"/v1beta/properties/{self.property_id}:runReport":
            return 403, json_type, json.dumps({"error": {"code": 403, "message": "User does not have sufficient "
                                                         "permissions for this property.", "status": "PERMISSION_DENIED"}})
        body = request.json()
        span = days(body["dateRanges"][0]["startDate"], body["dateRanges"][0]["endDate"])
        metrics = [m["name"] for m in body["metrics"]]
        dimension = (body.get("dimensions") or [{}])[0].get("name")
        answer: dict[str, Any] = {
            "dimensionHeaders": [{"name": dimension}] if dimension else [],
            "metricHeaders": [{"name": m, "type": "TYPE_INTEGER"} for m in metrics],
            "metadata": {"currencyCode": "USD", "timeZone": "Etc/UTC"}, "kind": "analyticsData#runReport"}
        if self.no_data_before and span[0] < self.no_data_before:
            return 200, json_type, json.dumps(answer)          # no rows, no rowCount
        rows = []
        for key, figures in self.rows(span, dimension):
            rows.append({"dimensionValues": [{"value": key}] if dimension else [],
                         "metricValues": [{"value": str(figures[m])} for m in metrics]})
        rows = rows[: body.get("limit", 10000)]
        answer.update(rows=rows, rowCount=len(rows))
        return 200, json_type, json.dumps(answer)

    @staticmethod
    def rows(span: list[date], dimension: str | None) -> list[tuple[str, dict[str, int]]]:
        def figures(within: list[date], share: float = 1.0) -> dict[str, int]:
            users = round(sum(visitors_on(d) for d in within) * share)
            views = round(sum(pageviews_on(d) for d in within) * share)
            return {"activeUsers": users, "screenPageViews": views, "keyEvents": round(users * 0.05),
                    "eventCount": views * 2}
        if dimension is None:
            return [("", figures(span))]
        if dimension == "date":   # days without data have no row
            return [(d.strftime("%Y%m%d"), figures([d])) for d in span if visitors_on(d)]
        if dimension == "pagePath":
            return [(p, figures(span, s / sum(PAGES.values()))) for p, s in PAGES.items()]
        if dimension == "sessionSource":
            return [(("(direct)" if s.startswith("Direct") else s.lower()), figures(span, w / sum(SOURCES.values())))
                    for s, w in SOURCES.items()]
        if dimension == "eventName":
            total = figures(span)
            return [("page_view", {**total, "eventCount": total["screenPageViews"], "keyEvents": 0}),
                    ("donate", {**total, "eventCount": total["keyEvents"] * 2, "keyEvents": total["keyEvents"]})]
        raise ValueError(dimension)
