"""MongoDB Atlas Administration API v2 (reference: provider-apis.md section 1), on the shared HTTP policy.

Connection `atlas_api` (http): host defaults to https://cloud.mongodb.com; login = public key,
password = private key (HTTP Digest); extra: project_id, cluster, optional org_id (else read from
the project; the organisation's events need a key with Organization Read Only). With extra
`"auth": "service_account"`, login/password are an OAuth client id/secret instead (client
credentials at /api/oauth/token, Bearer token reused until shortly before it expires).
Every endpoint is sent its own versioned Accept header; list endpoints are paged.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable

import requests
from requests.auth import HTTPDigestAuth

from maintenance.hooks.http import PolicyHttpHook
from maintenance.hooks.http_policy import HTTP_4XX, MALFORMED, ProviderError, redact, send

V2023 = "application/vnd.atlas.2023-01-01+json"
V2024 = "application/vnd.atlas.2024-08-05+json"   # getCluster and getBackupSchedule
OWN_EXTRA = ("project_id", "cluster", "auth", "org_id")      # connection extras that are not HTTP headers
PAGE_SIZE = 100
MAX_PAGES = 50
CLOCK_SKEW = 600      # seconds: a snapshot created this much "before" our request may still be ours

log = logging.getLogger(__name__)


def _epoch(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class AtlasServiceAccountAuth(requests.auth.AuthBase):
    """OAuth2 client credentials: POST {base}/api/oauth/token, then Authorization: Bearer.

    The token (valid about an hour) is renewed shortly before it expires, so a wait of many
    hours keeps working; a 401 to a Bearer request (a token revoked or expired early) renews
    it once and re-sends the request, as requests' HTTPDigestAuth answers its challenge.
    """

    def __init__(self, client_id: str, client_secret: str, token_url: str, conn_id: str) -> None:
        self.client_id, self.client_secret, self.token_url, self.conn_id = client_id, client_secret, token_url, conn_id
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires:
                with requests.Session() as session:
                    body = send(session, "POST", self.token_url, conn_id=self.conn_id, expect_json=True,
                                secrets=[self.client_secret], auth=(self.client_id, self.client_secret),
                                data={"grant_type": "client_credentials"},
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
                if not isinstance(body, dict) or not body.get("access_token"):
                    raise ProviderError(MALFORMED, "Atlas token endpoint: no access_token in the answer",
                                        conn_id=self.conn_id)
                try:
                    lifetime = float(body.get("expires_in") or 3600)
                except (TypeError, ValueError):
                    lifetime = 3600.0
                self._token = str(body["access_token"])
                # renew a minute early (a tenth early for a short-lived token)
                self._expires = time.time() + lifetime - min(60.0, lifetime / 10)
            return self._token

    def _renew_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, "_atlas_renewed", False):
            return response
        with self._lock:
            if request.headers.get("Authorization") == f"Bearer {self._token}":
                self._token = None      # the token the server refused: get another
        response.content  # noqa: B018 - read it, so the connection can be reused
        response.close()
        again = request.copy()
        again.headers["Authorization"] = f"Bearer {self.token()}"
        again._atlas_renewed = True  # type: ignore[attr-defined]
        renewed = response.connection.send(again, **kwargs)
        renewed.history.append(response)
        renewed.request = again
        return renewed

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._renew_on_401)
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

    # -- requests that create a job: not idempotent ------------------------------------------------
    # A timeout, a dropped connection or a 5xx does not say whether Atlas acted on the POST. So
    # before a retry (and before giving up) the hook looks for the job the failed try may have
    # created and returns it: a retry never starts a second snapshot or restore job.
    def _recover(self, find: Callable[[], dict[str, Any] | None], what: str) -> Callable[[ProviderError], Any]:
        def recover(error: ProviderError) -> dict[str, Any] | None:
            try:
                found = find()
            except ProviderError as lookup:
                raise ProviderError(error.reason, f"{error}; whether the {what} was created is unknown (looking "
                                    f"for it failed: {lookup.reason}), so it is not requested again",
                                    status=error.status, conn_id=error.conn_id, attempts=error.attempts) from None
            if found is not None:
                log.info("%s; the %s %s was created all the same: not requested again", error, what, found.get("id"))
            return found
        return recover

    def find_snapshot(self, description: str, since: float | None = None) -> dict[str, Any] | None:
        """The newest on-demand snapshot with this description (created at or after `since`)."""
        mine = [s for s in self.snapshots() if s.get("snapshotType") == "onDemand" and s.get("description") == description
                and (since is None or (_epoch(s.get("createdAt")) or 0) >= since)]
        return max(mine, key=lambda s: str(s.get("createdAt")), default=None)

    def take_snapshot(self, description: str, retention_days: int) -> dict[str, Any]:
        """Request an on-demand snapshot; the description should name the request (e.g. the run id)."""
        since = time.time() - CLOCK_SKEW
        recover = self._recover(lambda: self.find_snapshot(description, since), "on-demand snapshot")
        try:
            return self.call("POST", self._cluster_path("/backup/snapshots"), recover=recover,
                             body={"description": description, "retentionInDays": max(1, int(retention_days))})
        except ProviderError as exc:
            # 409: one is already in progress, perhaps the one our failed try started.
            if exc.status == 409 and (found := self.find_snapshot(description, since)) is not None:
                return found
            raise

    def restore_jobs(self) -> list[dict[str, Any]]:
        return self.list_all(self._cluster_path("/backup/restoreJobs"))

    def schedule(self) -> dict[str, Any]:
        return self.call("GET", self._cluster_path("/backup/schedule"), V2024)

    def cluster_description(self) -> dict[str, Any]:
        return self.call("GET", self._cluster_path(), V2024)

    def create_download_restore(self, snapshot_id: str) -> dict[str, Any]:
        """A download restore job of the snapshot. Restore jobs have no creation time or
        description, so the jobs that exist before the request tell ours apart after a fault."""
        known = {job.get("id") for job in self.restore_jobs()}

        def find() -> dict[str, Any] | None:
            return next((job for job in self.restore_jobs() if job.get("id") not in known
                         and job.get("snapshotId") == snapshot_id and job.get("deliveryType") == "download"), None)
        return self.call("POST", self._cluster_path("/backup/restoreJobs"), recover=self._recover(find, "restore job"),
                         body={"deliveryType": "download", "snapshotId": snapshot_id})

    def restore_job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", self._cluster_path(f"/backup/restoreJobs/{job_id}"))

    # -- project level (runbook_database, security scan, security logs) ---------------------------
    def access_list(self) -> list[dict[str, Any]]:
        """The project's IP access list (cidrBlock / ipAddress / awsSecurityGroup, deleteAfterDate)."""
        return self.list_all(f"/api/atlas/v2/groups/{self.project_id}/accessList")

    def events(self, min_date: str, max_date: str | None = None, *, cluster: str | None = None,
               limit: int = 2000) -> list[dict[str, Any]]:
        """Project events (listGroupEvents) between min_date and max_date (ISO 8601), optionally about
        one cluster; newest first. Without includeRaw the answer has no `raw`: nothing here reads it
        (an access-list entry is the event's own `whitelistEntry`)."""
        params: dict[str, Any] = {"minDate": min_date}
        if max_date:
            params["maxDate"] = max_date
        if cluster:
            params["clusterNames"] = cluster
        return self.list_all(f"/api/atlas/v2/groups/{self.project_id}/events", params=params, limit=limit)

    @property
    def org_id(self) -> str:
        """extra.org_id, else the project's own orgId (GET /groups/{groupId}, read once)."""
        if not self.extra.get("org_id"):
            found = self.call("GET", f"/api/atlas/v2/groups/{self.project_id}").get("orgId")
            if not found:
                raise ProviderError(MALFORMED, f"GET /groups/{self.project_id}: no orgId in the answer",
                                    conn_id=self.http_conn_id)
            self.extra["org_id"] = str(found)
        return str(self.extra["org_id"])

    def org_events(self, min_date: str, max_date: str | None = None, *, event_types: list[str] | None = None,
                   limit: int = 2000) -> list[dict[str, Any]]:
        """Organisation events (listOrgEvents): organisation settings such as the API access list
        requirement are organisation events, which the project's events never carry."""
        params: dict[str, Any] = {"minDate": min_date}
        if max_date:
            params["maxDate"] = max_date
        if event_types:
            params["eventType"] = list(event_types)
        return self.list_all(f"/api/atlas/v2/orgs/{self.org_id}/events", params=params, limit=limit)

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
