"""OSV API (provider-apis.md section 11, next-anchors.md section 3): querybatch and vulns/{id}.

POST /v1/querybatch takes at most 1,000 queries and answers, in query order, only ids and
`modified` ({} for a clean package); a query with more results carries next_page_token, sent
back with the same query in a later batch. Details come from GET /v1/vulns/{id}.
No auth; the base URL is the config's (a local server in tests).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable
from urllib.parse import quote

from maintenance.hooks.http_policy import MALFORMED, ProviderError
from maintenance.hooks.public import PublicApiHook

MAX_BATCH = 1000
MAX_PAGES = 20          # per query: a runaway page-token loop must end


class OsvHook(PublicApiHook):
    def __init__(self, base_url: str = "https://api.osv.dev", conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, base_url=base_url, **kwargs)
        self.batch_requests = 0

    def querybatch(self, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One POST /v1/querybatch; the results list, one object per query."""
        if len(queries) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} queries a batch")
        self.batch_requests += 1
        body = self.request("POST", "/v1/querybatch", json={"queries": queries})
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(queries):
            got = len(results) if isinstance(results, list) else "no"
            raise ProviderError(MALFORMED, f"OSV querybatch: {got} results for {len(queries)} queries")
        return [r if isinstance(r, dict) else {} for r in results]

    def vuln_ids(self, packages: Iterable[tuple[str, str, str]], batch_size: int = MAX_BATCH) -> list[list[tuple[str, str]]]:
        """For each (ecosystem, name, version): its [(vuln id, modified)], every page followed.

        Queries are sent 1,000 a batch; queries that came back with a next_page_token are
        asked again, with their token, in the next batch (several such pages share a batch).
        """
        batch_size = max(1, min(batch_size, MAX_BATCH))
        items = list(packages)
        found: list[list[tuple[str, str]]] = [[] for _ in items]
        pending: list[tuple[int, str | None]] = [(i, None) for i in range(len(items))]
        pages = [0] * len(items)
        while pending:
            chunk, pending = pending[:batch_size], pending[batch_size:]
            queries = []
            for index, token in chunk:
                eco, name, version = items[index]
                query: dict[str, Any] = {"package": {"name": name, "ecosystem": eco}, "version": version}
                if token:
                    query["page_token"] = token
                queries.append(query)
            for (index, _), result in zip(chunk, self.querybatch(queries)):
                for vuln in result.get("vulns") or []:
                    if isinstance(vuln, dict) and isinstance(vuln.get("id"), str):
                        found[index].append((vuln["id"], str(vuln.get("modified") or "")))
                token = result.get("next_page_token")
                pages[index] += 1
                if isinstance(token, str) and token and pages[index] < MAX_PAGES:
                    pending.append((index, token))
        return found

    def vuln(self, vuln_id: str) -> dict[str, Any]:
        body = self.get_json(f"/v1/vulns/{quote(vuln_id, safe='')}")
        if not isinstance(body, dict) or body.get("id") != vuln_id:
            raise ProviderError(MALFORMED, f"OSV vulns/{vuln_id}: not the advisory asked for")
        return body

    def vulns(self, ids: list[str], workers: int = 8) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Details of many advisories, a few at a time: (records, errors by id)."""
        records: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}

        def one(vid: str) -> None:
            try:
                records[vid] = self.vuln(vid)
            except ProviderError as exc:
                errors[vid] = str(exc)

        if ids:
            self.session  # noqa: B018 - build the session once, before the threads share it
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ids)))) as pool:
                list(pool.map(one, ids))
        return records, errors

    def query_one(self, ecosystem: str, name: str, version: str) -> list[dict[str, Any]]:
        """POST /v1/query for one package (full records): the naive way, kept for the benchmark."""
        body = self.request("POST", "/v1/query", json={"package": {"name": name, "ecosystem": ecosystem},
                                                       "version": version})
        return [v for v in (body.get("vulns") or []) if isinstance(v, dict)] if isinstance(body, dict) else []
