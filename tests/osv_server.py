"""Local OSV API, PyPI JSON API and npm registry (provider-apis.md 11, next-anchors.md 3) for
tests and the dependency-scan benchmark.

OSV: POST /v1/querybatch (at most 1,000 queries, else 400; ids and `modified` only, {} for a
clean package, `page_size` ids a page with next_page_token), GET /v1/vulns/{id} (the record),
POST /v1/query (full records, the naive client's route). `faults` programs statuses to answer
first (e.g. 429 with Retry-After; their body is `fault_body` when set, e.g. JSON nested 100,000
deep); `delay` adds latency to every request.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from servers import LocalServer, Reply, Request, ServedApp, json_reply

DEEP_JSON = '{"error":' * 100_000 + '"x"' + "}" * 100_000


def advisory(vid: str, package: str, ecosystem: str, versions: list[str], *, fixed: str | None = None,
             introduced: str = "0", severity: str | None = None, cvss: str | None = None,
             aliases: list[str] | None = None, modified: str = "2026-10-01T00:00:00Z") -> dict[str, Any]:
    """An OSV record; `severity` goes to database_specific (GHSA style), `cvss` to severity[]."""
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    record: dict[str, Any] = {
        "id": vid, "modified": modified, "published": "2026-01-01T00:00:00Z", "aliases": aliases or [],
        "summary": f"{vid} in {package}", "details": "...",
        "affected": [{"package": {"name": package, "ecosystem": ecosystem}, "versions": versions,
                      "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
    }
    if severity:
        record["database_specific"] = {"severity": severity, "cwe_ids": ["CWE-79"], "github_reviewed": True}
    if cvss:
        record["severity"] = [{"type": "CVSS_V4" if cvss.startswith("CVSS:4") else "CVSS_V3", "score": cvss}]
    return record


class OsvServer(ServedApp):
    def __init__(self, records: list[dict[str, Any]] | None = None, *, page_size: int = 1000,
                 delay: float = 0.0) -> None:
        self.records = {r["id"]: r for r in records or []}
        self.page_size, self.delay = page_size, delay
        self.faults: list[tuple[int, dict[str, str]]] = []
        self.fault_body: str | None = None
        self.batch_sizes: list[int] = []
        self.vuln_gets: list[str] = []
        self.single_queries = 0
        self.malformed_batch = False
        self.server = LocalServer(self)

    def _index(self) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        """(ecosystem, name, version) -> records, from each record's affected versions."""
        index: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for record in list(self.records.values()):
            keys = {(a.get("package", {}).get("ecosystem"), a.get("package", {}).get("name"), v)
                    for a in record.get("affected", []) for v in a.get("versions", [])}
            for key in keys:
                index.setdefault(key, []).append(record)
        return index

    def _matches(self, name: str, ecosystem: str, version: str, index: dict | None = None) -> list[dict[str, Any]]:
        return (index if index is not None else self._index()).get((ecosystem, name, version), [])

    def __call__(self, request: Request) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        if self.faults:
            status, headers = self.faults.pop(0)
            if self.fault_body is not None:
                return status, {"Content-Type": "application/json", **headers}, self.fault_body
            return json_reply({"code": 8, "message": "Resource has been exhausted"}, status, headers)
        path = urlsplit(request.path).path
        if path == "/v1/querybatch" and request.method == "POST":
            return self._batch(request)
        if path == "/v1/query" and request.method == "POST":
            self.single_queries += 1
            query = request.json()
            pkg = query.get("package", {})
            vulns = self._matches(pkg.get("name"), pkg.get("ecosystem"), query.get("version"))
            return json_reply({"vulns": vulns} if vulns else {})
        if match := re.fullmatch(r"/v1/vulns/(.+)", path):
            vid = unquote(match.group(1))
            self.vuln_gets.append(vid)
            if vid not in self.records:
                return json_reply({"code": 5, "message": "Bug not found."}, 404)
            return json_reply(self.records[vid])
        return json_reply({"code": 5, "message": "Not Found"}, 404)

    def _batch(self, request: Request) -> Reply:
        try:
            queries = request.json()["queries"]
        except (ValueError, KeyError, TypeError):
            return json_reply({"code": 3, "message": "Invalid request"}, 400)
        if len(queries) > 1000:
            return json_reply({"code": 3, "message": "Too many queries."}, 400)
        self.batch_sizes.append(len(queries))
        if self.malformed_batch:
            return 200, {"Content-Type": "application/json"}, '{"results": [{"vulns": [{"id": "GHSA-tru'
        results = []
        index = self._index()
        for query in queries:
            pkg = query.get("package", {})
            if "version" in query and "purl" in pkg:
                return json_reply({"code": 3, "message": "version specified in both purl and query"}, 400)
            vulns = [{"id": r["id"], "modified": r["modified"]}
                     for r in self._matches(pkg.get("name"), pkg.get("ecosystem"), query.get("version"), index)]
            start = int(base64.b64decode(query["page_token"]).decode()) if query.get("page_token") else 0
            page = vulns[start:start + self.page_size]
            item: dict[str, Any] = {"vulns": page} if page else {}
            if start + self.page_size < len(vulns):
                item["next_page_token"] = base64.b64encode(str(start + self.page_size).encode()).decode()
            results.append(item)
        return json_reply({"results": results})


class RegistryServer(ServedApp):
    """PyPI's JSON API (/pypi/{name}/json) and the npm registry (/{name}, /@scope%2fname)."""

    def __init__(self, pypi: dict[str, str] | None = None, npm: dict[str, str] | None = None) -> None:
        self.pypi, self.npm = pypi or {}, npm or {}
        self.paths: list[str] = []
        self.broken: set[str] = set()          # names answered with a malformed body
        self.deep_errors: set[str] = set()     # names answered 404 with JSON nested 100,000 deep
        self.server = LocalServer(self)

    def __call__(self, request: Request) -> Reply:
        path = urlsplit(request.path).path
        self.paths.append(path)
        if any(path.rstrip("/").endswith(("/" + name, "/" + name + "/json")) for name in self.deep_errors):
            return 404, {"Content-Type": "application/json"}, DEEP_JSON
        if match := re.fullmatch(r"/pypi/([^/]+)/json", path):
            name = match.group(1)
            if name in self.broken:
                return 200, {"Content-Type": "application/json"}, '{"info": '
            if name not in self.pypi:
                return json_reply({"message": "Not Found"}, 404)
            return json_reply({"info": {"name": name, "version": self.pypi[name]}, "releases": {}, "urls": []})
        name = unquote(path.lstrip("/"))
        if name in self.npm:
            if "application/vnd.npm.install-v1+json" not in request.headers.get("Accept", ""):
                return json_reply({"error": "the test registry serves abbreviated metadata only"}, 406)
            latest = self.npm[name]
            return json_reply({"name": name, "modified": "2026-10-01T00:00:00.000Z", "dist-tags": {"latest": latest},
                               "versions": {latest: {"name": name, "version": latest}}})
        return json_reply({"error": "Not found"}, 404)
