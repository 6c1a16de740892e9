"""MongoDB Atlas Administration API v2 (reference: provider-apis.md section 1), on the shared HTTP policy.

Connection `atlas_api` (http): host defaults to https://cloud.mongodb.com; login = public key,
password = private key (HTTP Digest); extra: project_id, cluster. With extra
`"auth": "service_account"`, login/password are an OAuth client id/secret instead (client
credentials at /api/oauth/token, Bearer token reused until shortly before it expires).
Every endpoint is sent its own versioned Accept header; list endpoints are paged.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.auth import HTTPDigestAuth

from maintenance.hooks.http import PolicyHttpHook
from maintenance.hooks.http_policy import HTTP_4XX, MALFORMED, ProviderError, redact, send

V2023 = "application/vnd.atlas.2023-01-01+json"
V2024 = "application/vnd.atlas.2024-08-05+json"   # getCluster and getBackupSchedule
OWN_EXTRA = ("project_id", "cluster", "auth")      # connection extras that are not HTTP headers
PAGE_SIZE = 100
MAX_PAGES = 50


class AtlasServiceAccountAuth(requests.auth.AuthBase):
    """OAuth2 client credentials: POST {base}/api/oauth/token, then Authorization: Bearer."""

    def __init__(self, client_id: str, client_secret: str, token_url: str, conn_id: str) -> None:
        self.client_id, self.client_secret, self.token_url, self.conn_id = client_id, client_secret, token_url, conn_id
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        if self._token is None or time.time() > self._expires - 60:
            with requests.Session() as session:
                body = send(session, "POST", self.token_url, conn_id=self.conn_id, expect_json=True,
                            secrets=[self.client_secret], auth=(self.client_id, self.client_secret),
                            data={"grant_type": "client_credentials"},
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            if not isinstance(body, dict) or not body.get("access_token"):
                raise ProviderError(MALFORMED, "Atlas token endpoint: no access_token in the answer", conn_id=self.conn_id)
            self._token = str(body["access_token"])
            self._expires = time.time() + float(body.get("expires_in") or 3600)
        return self._token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


class AtlasHook(PolicyHttpHook):
    default_conn_name = "atlas_api"
    default_host = "https://cloud.mongodb.com"
    auth_class = HTTPDigestAuth
    own_extras = OWN_EXTRA
    conn_type = "http"
    hook_name = "MongoDB Atlas"

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, **kwargs)
        self._extra: dict[str, Any] | None = None

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        session = super().get_conn(headers, extra_options)
        connection = self.get_connection(self.http_conn_id)
        if str(connection.extra_dejson.get("auth", "digest")).lower() in ("service_account", "oauth"):
            session.auth = AtlasServiceAccountAuth(connection.login or "", connection.password or "",
                                                   self.base_url.rstrip("/") + "/api/oauth/token", self.http_conn_id)
        return session

    # -- connection extras -------------------------------------------------------------------
    @property
    def extra(self) -> dict[str, Any]:
        if self._extra is None:
            self._extra = dict(self.get_connection(self.http_conn_id).extra_dejson)
        return self._extra

    @property
    def project_id(self) -> str:
        value = self.extra.get("project_id") or self.extra.get("group_id")
        if not value:
            raise ProviderError(HTTP_4XX, f"connection '{self.http_conn_id}' has no extra.project_id "
                                          "(the Atlas project, a 24-hex-digit id)", conn_id=self.http_conn_id)
        return str(value)

    @property
    def cluster(self) -> str:
        value = self.extra.get("cluster")
        if not value:
            raise ProviderError(HTTP_4XX, f"connection '{self.http_conn_id}' has no extra.cluster (the cluster name)",
                                conn_id=self.http_conn_id)
        return str(value)

    def _cluster_path(self, suffix: str = "") -> str:
        return f"/api/atlas/v2/groups/{self.project_id}/clusters/{self.cluster}{suffix}"

    # -- calls -------------------------------------------------------------------------------------
    def call(self, method: str, path: str, version: str = V2023, body: Any = None, **kwargs: Any) -> Any:
        headers = {"Accept": version}
        if body is not None:
            headers["Content-Type"] = version
            kwargs["json"] = body
        result = self.request(method, path, headers=headers, **kwargs)
        if not isinstance(result, dict):
            raise ProviderError(MALFORMED, f"{method} {path}: expected a JSON object", conn_id=self.http_conn_id)
        return result

    def list_all(self, path: str, version: str = V2023, params: dict[str, Any] | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
        """Every item of a paged list endpoint (pageNum/itemsPerPage; stops at totalCount or a short page)."""
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            query = {**(params or {}), "pageNum": page, "itemsPerPage": PAGE_SIZE, "includeCount": "true"}
            body = self.call("GET", path, version, params=query)
            results = body.get("results")
            if not isinstance(results, list):
                raise ProviderError(MALFORMED, f"GET {path}: no 'results' list in the answer", conn_id=self.http_conn_id)
            items.extend(r for r in results if isinstance(r, dict))
            total = body.get("totalCount")
            has_next = any(isinstance(link, dict) and link.get("rel") == "next" for link in body.get("links") or [])
            if limit is not None and len(items) >= limit:
                return items[:limit]
            if not results or (len(items) >= int(total) if total is not None else not has_next):
                break
        return items

    def snapshots(self) -> list[dict[str, Any]]:
        return self.list_all(self._cluster_path("/backup/snapshots"))

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        return self.call("GET", self._cluster_path(f"/backup/snapshots/{snapshot_id}"))

    def take_snapshot(self, description: str, retention_days: int) -> dict[str, Any]:
        return self.call("POST", self._cluster_path("/backup/snapshots"),
                         body={"description": description, "retentionInDays": max(1, int(retention_days))})

    def schedule(self) -> dict[str, Any]:
        return self.call("GET", self._cluster_path("/backup/schedule"), V2024)

    def cluster_description(self) -> dict[str, Any]:
        return self.call("GET", self._cluster_path(), V2024)

    def create_download_restore(self, snapshot_id: str) -> dict[str, Any]:
        return self.call("POST", self._cluster_path("/backup/restoreJobs"),
                         body={"deliveryType": "download", "snapshotId": snapshot_id})

    def restore_job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", self._cluster_path(f"/backup/restoreJobs/{job_id}"))

    # -- project level (runbook_database, issue 10) ----------------------------------------------
    def access_list(self) -> list[dict[str, Any]]:
        """The project's IP access list (cidrBlock / ipAddress / awsSecurityGroup, deleteAfterDate)."""
        return self.list_all(f"/api/atlas/v2/groups/{self.project_id}/accessList")

    def events(self, min_date: str, cluster: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Project events since min_date (ISO 8601), optionally about one cluster; newest first."""
        params: dict[str, Any] = {"minDate": min_date}
        if cluster:
            params["clusterNames"] = cluster
        return self.list_all(f"/api/atlas/v2/groups/{self.project_id}/events", params=params, limit=limit)

    def download(self, url: str, path: str, *, max_bytes: int, chunk: int = 1024 * 1024) -> int:
        """Stream a restore archive to `path` (bounded memory); returns its size. Raises ProviderError."""
        safe = redact(url)
        with requests.Session() as session:
            # Delivery URLs are pre-signed: no Atlas credentials go to them.
            response = send(session, "GET", url, policy=self.policy, conn_id=self.http_conn_id, stream=True)
            size = 0
            try:
                with open(path, "wb") as out:
                    for block in response.iter_content(chunk):
                        size += len(block)
                        if size > max_bytes:
                            raise ProviderError(HTTP_4XX, f"GET {safe}: archive larger than {max_bytes} bytes: not downloaded")
                        out.write(block)
            except requests.RequestException as exc:
                raise ProviderError("connection_error", f"GET {safe}: download interrupted ({type(exc).__name__})") from None
            finally:
                response.close()
        return size

