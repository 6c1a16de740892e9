"""A local MongoDB Atlas Administration API v2 (provider-apis.md section 1) for tests.

Real HTTP Digest auth (RFC 7616, MD5, qop=auth): a request without credentials gets 401 with a
WWW-Authenticate challenge; the client's response hash is verified against the private key.
Versioned media types are enforced per endpoint (406 for a wrong Accept), lists are paged,
errors use the ApiError shape. Also: OAuth client credentials at /api/oauth/token.

State is plain data the tests set: snapshots, schedule, cluster, and how on-demand snapshots
and restore jobs progress (`on_demand` = "completed" | "failed" | "stuck", after `polls` GETs).
Faults: `post_faults` spoil the answers to the next POSTs that create a snapshot or restore job
(("after", fault): the job is created, then the answer is lost; ("before", status): refused,
nothing created); `token_ttl` makes OAuth tokens expire (and be refused) after that many seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import tarfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from servers import LocalServer, Reply, Request, ServedApp, basic_credentials, json_reply

V2023 = "application/vnd.atlas.2023-01-01+json"
V2024 = "application/vnd.atlas.2024-08-05+json"
REALM = "MMS Public API"

# Events as the v2 spec types them (atlas-sdk-go: EventViewForNdsGroup / EventViewForOrg and their
# eventTypeName enums). A test that seeds a field or type the spec does not have fails at once.
GROUP_EVENT_FIELDS = {
    "id", "created", "eventTypeName", "groupId", "orgId", "links", "isGlobalAdmin", "remoteAddress", "userId",
    "username", "apiKeyId", "publicKey", "alertId", "alertConfigId", "targetPublicKey", "targetUsername",
    "whitelistEntry", "dbUserUsername", "hostname", "port", "replicaSetName", "shardName", "metricName",
    "currentValue", "resourceId", "resourceType", "teamId", "invoiceId", "paymentId", "delegatePrincipal",
    "collection", "database", "opType", "sessionId", "endpointId", "providerEndpointId"}
ORG_EVENT_FIELDS = {
    "id", "created", "eventTypeName", "groupId", "orgId", "links", "isGlobalAdmin", "remoteAddress", "userId",
    "username", "apiKeyId", "publicKey", "alertId", "alertConfigId", "invoiceId", "paymentId", "whitelistEntry",
    "teamId", "targetUsername"}
GROUP_EVENT_TYPES = {   # the part of the project enums the tests use (NDS audit, API user, user, replica set, backup)
    "CLUSTER_CREATED", "CLUSTER_READY", "CLUSTER_UPDATE_SUBMITTED", "CLUSTER_UPDATE_STARTED",
    "CLUSTER_UPDATE_COMPLETED", "CLUSTER_DELETED", "MONGODB_USER_ADDED", "MONGODB_USER_DELETED",
    "MONGODB_USER_UPDATED", "MONGODB_ROLE_ADDED", "MONGODB_ROLE_UPDATED", "MONGODB_ROLE_DELETED",
    "NETWORK_PERMISSION_ENTRY_ADDED", "NETWORK_PERMISSION_ENTRY_REMOVED", "NETWORK_PERMISSION_ENTRY_UPDATED",
    "API_KEY_CREATED", "API_KEY_DELETED", "API_KEY_ACCESS_LIST_ENTRY_ADDED", "API_KEY_ACCESS_LIST_ENTRY_DELETED",
    "API_KEY_ROLES_CHANGED", "API_KEY_DESCRIPTION_CHANGED", "API_KEY_ADDED_TO_GROUP", "API_KEY_REMOVED_FROM_GROUP",
    "JOINED_GROUP", "REMOVED_FROM_GROUP", "INVITED_TO_GROUP", "USER_ROLES_CHANGED_AUDIT",
    "PRIMARY_ELECTED", "NO_PRIMARY", "ONE_PRIMARY", "TOO_MANY_ELECTIONS",
    "CPS_SNAPSHOT_STARTED", "CPS_SNAPSHOT_SUCCESSFUL", "CPS_SNAPSHOT_FAILED", "CPS_RESTORE_SUCCESSFUL",
    "CPS_RESTORE_FAILED"}
ORG_EVENT_TYPES = {     # part of OrgEventTypeViewForOrg
    "ORG_CREATED", "ORG_RENAMED", "ORG_TWO_FACTOR_AUTH_REQUIRED", "ORG_TWO_FACTOR_AUTH_OPTIONAL",
    "ORG_PUBLIC_API_ACCESS_LIST_REQUIRED", "ORG_PUBLIC_API_ACCESS_LIST_NOT_REQUIRED",
    "ORG_EMPLOYEE_ACCESS_RESTRICTED", "ORG_EMPLOYEE_ACCESS_UNRESTRICTED", "ORG_UI_IP_ACCESS_LIST_ENABLED",
    "ORG_UI_IP_ACCESS_LIST_DISABLED", "ORG_EDITED_UI_IP_ACCESS_LIST_ENTRIES", "ORG_INVOICE_OVER_THRESHOLD"}


def _checked_events(events: list[dict[str, Any]], fields: set[str], types: set[str], what: str) -> list[dict[str, Any]]:
    for event in events:
        extra = set(event) - fields - {"clusterName"}   # clusterName: what clusterNames filters on; not served
        assert not extra, f"{what} events have no field {sorted(extra)} in the Atlas spec"
        assert event.get("eventTypeName") in types, f"{event.get('eventTypeName')} is not one of the {what} event types"
    return events


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot(sid: str, hours_ago: float, status: str = "completed", size: int = 1_000_000,
             kind: str = "scheduled", now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    created = now - timedelta(hours=hours_ago)
    return {"id": sid, "createdAt": iso(created), "expiresAt": iso(created + timedelta(days=30)), "status": status,
            "snapshotType": kind, "frequencyType": "daily", "type": "REPLICA_SET", "cloudProvider": "AWS",
            "replicaSetName": "rs0", "mongodVersion": "8.0.4", "storageSizeBytes": size, "policyItems": [],
            "copyRegions": [], "links": []}


def schedule(daily_days: int = 30, unit: str = "days") -> dict[str, Any]:
    return {"clusterId": "c1", "clusterName": "prod", "referenceHourOfDay": 3, "restoreWindowDays": 7,
            "policies": [{"id": "p1", "policyItems": [
                {"id": "i1", "frequencyType": "hourly", "frequencyInterval": 6, "retentionUnit": "days", "retentionValue": 2},
                {"id": "i2", "frequencyType": "daily", "frequencyInterval": 1, "retentionUnit": unit,
                 "retentionValue": daily_days}]}],
            "copySettings": [], "autoExportEnabled": False, "links": []}


def mongodump_archive(collections: dict[str, bytes]) -> bytes:
    """A tar.gz in mongodump layout: dump/<db>/<collection>.bson and .metadata.json."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in collections.items():
            db, coll = name.split(".", 1)
            for suffix, payload in ((".bson", data), (".metadata.json", json.dumps({"indexes": []}).encode())):
                info = tarfile.TarInfo(f"dump/{db}/{coll}{suffix}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def corrupt(archive: bytes) -> bytes:
    """Flip bytes in the middle of the compressed stream (as a damaged download would)."""
    data = bytearray(archive)
    middle = len(data) // 2
    for i in range(middle, min(middle + 64, len(data))):
        data[i] ^= 0xFF
    return bytes(data)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class AtlasServer(ServedApp):
    def __init__(self, public_key: str = "atlas-public", private_key: str = "atlas-private-SECRET",
                 project_id: str = "5f4007f327a3bd7b6f4103c5", cluster: str = "prod") -> None:
        self.public_key, self.private_key, self.project_id, self.cluster_name = public_key, private_key, project_id, cluster
        self.snapshots: list[dict[str, Any]] = [snapshot("s-fresh", 3)]
        self.schedule = schedule()
        self.cluster = {"id": "c1", "name": cluster, "clusterType": "REPLICASET", "stateName": "IDLE", "paused": False,
                        "backupEnabled": True, "pitEnabled": True, "mongoDBVersion": "8.0.4"}
        self.on_demand = "completed"     # completed | failed | stuck
        self.polls = 2                   # GETs of an on-demand snapshot before it reaches its end state
        self.initial_status = "queued"   # "completed": a (tiny) cluster's snapshot is done at once
        self.restore_polls = 1           # GETs of a restore job before it has its delivery URL
        self.archive = mongodump_archive({"app.users": b"\x05\x00\x00\x00\x00" * 10, "app.orders": b"\x05\x00\x00\x00\x00"})
        self.client_id, self.client_secret = "sa-client", "sa-SECRET"
        self.tokens: dict[str, float] = {}             # token -> when it stops being accepted
        self.token_ttl = 3600.0                        # seconds a token is accepted
        self.token_expires_in: float | None = None     # what the token answer says (default: token_ttl)
        self.post_faults: list[tuple[str, Any]] = []   # ("after", "timeout"|"drop"|status) / ("before", status)
        self.fault_delay = 1.5                         # seconds a "timeout" answer is held back
        self.list_faults = 0                           # the next N GETs of the snapshot list answer 500
        self.nonces: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []       # POST bodies of on-demand snapshots
        self.accepts: list[tuple[str, str]] = []      # (path, Accept) of every authorised API call
        self.unauthorized = 0
        # project level (runbook_database): IP access list and events (newest first)
        self.access_list: list[dict[str, Any]] = [{"cidrBlock": "203.0.113.0/24", "comment": "workers",
                                                   "groupId": project_id, "links": []}]
        self._events: list[dict[str, Any]] = []
        self._org_events: list[dict[str, Any]] = []
        self.org_id = "5f4007f327a3bd7b6f4103aa"
        self.org_readable = True          # False: the key is a project key, refused the organisation's events
        self.event_queries: list[dict[str, list[str]]] = []   # query of every events request, project or org
        self.server = LocalServer(self)

    # Events are checked against the spec as the tests set them (see GROUP_EVENT_FIELDS).
    @property
    def events(self) -> list[dict[str, Any]]:
        return self._events

    @events.setter
    def events(self, value: list[dict[str, Any]]) -> None:
        self._events = _checked_events(list(value), GROUP_EVENT_FIELDS, GROUP_EVENT_TYPES, "project")

    @property
    def org_events(self) -> list[dict[str, Any]]:
        return self._org_events

    @org_events.setter
    def org_events(self, value: list[dict[str, Any]]) -> None:
        self._org_events = _checked_events(list(value), ORG_EVENT_FIELDS, ORG_EVENT_TYPES, "organisation")

    def connection_json(self, private_key: str | None = None, **extra: Any) -> str:
        return json.dumps({"conn_type": "http", "host": self.url, "login": self.public_key,
                           "password": private_key or self.private_key,
                           "extra": {"project_id": self.project_id, "cluster": self.cluster_name, **extra}})

    def service_account_json(self, secret: str | None = None) -> str:
        return json.dumps({"conn_type": "http", "host": self.url, "login": self.client_id,
                           "password": secret or self.client_secret,
                           "extra": {"project_id": self.project_id, "cluster": self.cluster_name,
                                     "auth": "service_account"}})

    # -- auth ------------------------------------------------------------------------------------
    def _challenge(self) -> Reply:
        nonce = secrets.token_hex(16)
        self.nonces.add(nonce)
        self.unauthorized += 1
        header = f'Digest realm="{REALM}", domain="", nonce="{nonce}", algorithm=MD5, qop="auth", stale=false'
        return json_reply({"error": 401, "errorCode": "UNAUTHORIZED", "detail": "You are not authorized for this resource.",
                           "reason": "Unauthorized"}, 401, {"WWW-Authenticate": header})

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self.tokens.get(header[7:], 0) > time.time()
        if not header.startswith("Digest "):
            return False
        fields = dict((k, v1 or v2) for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', header[7:]))
        if fields.get("username") != self.public_key or fields.get("nonce") not in self.nonces:
            return False
        if fields.get("realm") != REALM or fields.get("uri") != request.path:
            return False
        ha1 = _md5(f"{self.public_key}:{REALM}:{self.private_key}")
        ha2 = _md5(f"{request.method}:{fields['uri']}")
        if fields.get("qop") == "auth":
            expected = _md5(f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))

    def _token(self, request: Request) -> Reply:
        if basic_credentials(request) != (self.client_id, self.client_secret) or b"grant_type=client_credentials" not in request.body:
            return json_reply({"error": "invalid_client"}, 401)
        token = secrets.token_hex(16)
        self.tokens[token] = time.time() + self.token_ttl
        expires_in = self.token_ttl if self.token_expires_in is None else self.token_expires_in
        return json_reply({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})

    def _creating(self, create: Any) -> Reply:
        """A POST that creates something, through the programmed faults."""
        when, fault = self.post_faults.pop(0) if self.post_faults else (None, None)
        if when == "before":
            return self._error(int(fault), "UNEXPECTED_ERROR", "try again later")
        reply = create()
        if when == "after" and reply[0] == 200:
            if fault == "drop":
                raise ConnectionAbortedError("connection dropped after the job was created")
            if fault == "timeout":
                time.sleep(self.fault_delay)      # the client has given up by now
            else:
                return self._error(int(fault), "UNEXPECTED_ERROR", "internal error")
        return reply

    # -- routes ------------------------------------------------------------------------------------
    def __call__(self, request: Request) -> Reply:
        parts = urlsplit(request.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/download/"):
            return 200, {"Content-Type": "application/gzip"}, self.archive
        if path == "/api/oauth/token" and request.method == "POST":
            return self._token(request)
        if not self._authorised(request):
            return self._challenge()
        project = f"/api/atlas/v2/groups/{self.project_id}"
        if path in (f"{project}/accessList", f"{project}/events", project, f"/api/atlas/v2/orgs/{self.org_id}/events"):
            return self._project_list(path, request, query)
        prefix = f"/api/atlas/v2/groups/{self.project_id}/clusters/{self.cluster_name}"
        if not path.startswith(prefix):
            return self._error(404, "RESOURCE_NOT_FOUND", f"no resource at {path}")
        rest = path[len(prefix):]
        accept = request.headers.get("Accept", "")
        self.accepts.append((rest or "/", accept))
        want = V2024 if rest in ("", "/backup/schedule") else V2023
        if accept != want:
            return self._error(406, "INVALID_VERSION_DATE", f"{rest or 'cluster'} is served as {want}")
        if rest == "":
            return json_reply(self.cluster)
        if rest == "/backup/schedule":
            return json_reply(self.schedule)
        if rest == "/backup/snapshots" and request.method == "GET":
            if self.list_faults > 0:
                self.list_faults -= 1
                return self._error(500, "UNEXPECTED_ERROR", "listing failed")
            return self._page(self.snapshots, query)
        if rest == "/backup/snapshots" and request.method == "POST":
            return self._creating(lambda: self._take(request))
        if match := re.fullmatch(r"/backup/snapshots/([\w-]+)", rest):
            return self._get_snapshot(match.group(1))
        if rest == "/backup/restoreJobs" and request.method == "POST":
            return self._creating(lambda: self._restore_job(request))
        if rest == "/backup/restoreJobs" and request.method == "GET":
            return self._page(list(self.jobs.values()), query)
        if match := re.fullmatch(r"/backup/restoreJobs/([\w-]+)", rest):
            job = self.jobs.get(match.group(1))
            if job is None:
                return self._error(404, "RESTORE_JOB_NOT_FOUND", "no such restore job")
            job["_polls"] += 1
            if job["_polls"] >= self.restore_polls:
                job["deliveryUrl"] = [f"{self.url}/download/{job['id']}/restore.tar.gz?sig=SIGNED-SECRET"]
                job["finishedAt"] = iso(datetime.now(timezone.utc))
            return json_reply(self._public(job))
        return self._error(404, "RESOURCE_NOT_FOUND", f"no resource at {path}")

    def _restore_job(self, request: Request) -> Reply:
        body = request.json()
        if body.get("deliveryType") != "download" or not any(s["id"] == body.get("snapshotId") for s in self.snapshots):
            return self._error(400, "INVALID_ATTRIBUTE", "bad restore job")
        job = {"id": f"job{len(self.jobs) + 1}", "snapshotId": body["snapshotId"], "deliveryType": "download",
               "cancelled": False, "failed": False, "expired": False, "deliveryUrl": [], "links": [], "_polls": 0}
        self.jobs[job["id"]] = job
        return json_reply(self._public(job))

    def _project_list(self, path: str, request: Request, query: dict[str, list[str]]) -> Reply:
        """GET /groups/{id} (getProject), /groups/{id}/accessList, /groups/{id}/events (listGroupEvents)
        and /orgs/{id}/events (listOrgEvents): minDate/maxDate/eventType filters, newest first, `raw`
        only with includeRaw=true."""
        if request.headers.get("Accept", "") != V2023:
            return self._error(406, "INVALID_VERSION_DATE", f"{path} is served as {V2023}")
        if path.endswith("/accessList"):
            return self._page(self.access_list, query)
        if path == f"/api/atlas/v2/groups/{self.project_id}":
            return json_reply({"id": self.project_id, "name": "shop", "orgId": self.org_id, "clusterCount": 1,
                               "created": "2024-01-01T00:00:00Z", "links": []})
        self.event_queries.append(query)
        org = path.startswith("/api/atlas/v2/orgs/")
        if org and not self.org_readable:
            return self._error(401, "USER_UNAUTHORIZED", "Current user is not authorized to perform this action.")
        events = sorted(self.org_events if org else self.events, key=lambda e: e["created"], reverse=True)
        if query.get("clusterNames"):
            events = [e for e in events if e.get("clusterName") in query["clusterNames"]]
        if query.get("eventType"):
            events = [e for e in events if e["eventTypeName"] in query["eventType"]]
        if query.get("minDate"):
            events = [e for e in events if e["created"] >= query["minDate"][0]]
        if query.get("maxDate"):
            events = [e for e in events if e["created"] <= query["maxDate"][0]]
        raw = query.get("includeRaw", ["false"])[0] == "true"
        served = [{**{k: v for k, v in e.items() if k != "clusterName"},
                   **({"raw": {"_t": e["eventTypeName"], "cid": self.project_id,
                               "cre": e["created"], "id": e["id"], "orgId": self.org_id, "gn": "shop",
                               "orgName": "Shop"}} if raw else {})} for e in events]
        return self._page(served, query)

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    @staticmethod
    def _error(status: int, code: str, detail: str) -> Reply:
        return json_reply({"error": status, "errorCode": code, "detail": detail, "reason": code.title()}, status)

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> Reply:
        page = int(query.get("pageNum", ["1"])[0])
        size = int(query.get("itemsPerPage", ["100"])[0])
        chunk = items[(page - 1) * size: page * size]
        links = [{"rel": "self", "href": f"{self.url}?pageNum={page}"}]
        if page * size < len(items):
            links.append({"rel": "next", "href": f"{self.url}?pageNum={page + 1}"})
        return json_reply({"links": links, "results": [self._public(s) for s in chunk], "totalCount": len(items)})

    def _take(self, request: Request) -> Reply:
        body = request.json() or {}
        if int(body.get("retentionInDays", 0)) < 1:
            return self._error(400, "INVALID_ATTRIBUTE", "retentionInDays must be at least 1")
        if any(s.get("_on_demand") and s["status"] in ("queued", "inProgress") for s in self.snapshots):
            return self._error(409, "SNAPSHOT_ALREADY_IN_PROGRESS", "an on-demand snapshot is already in progress")
        self.created.append(body)
        item = snapshot(f"od{len(self.created)}", 0, status=self.initial_status, kind="onDemand")
        item.update(description=body.get("description"), _on_demand=True, _polls=0,
                    expiresAt=iso(datetime.now(timezone.utc) + timedelta(days=int(body["retentionInDays"]))))
        self.snapshots.insert(0, item)
        return json_reply(self._public(item))

    def _get_snapshot(self, sid: str) -> Reply:
        item = next((s for s in self.snapshots if s["id"] == sid), None)
        if item is None:
            return self._error(404, "SNAPSHOT_NOT_FOUND", f"no snapshot {sid}")
        if item.get("_on_demand") and item["status"] in ("queued", "inProgress"):
            item["_polls"] += 1
            if self.on_demand != "stuck" and item["_polls"] >= self.polls:
                item["status"] = self.on_demand
                item["storageSizeBytes"] = 2_500_000
            else:
                item["status"] = "inProgress"
        return json_reply(self._public(item))


class CloudflareServer(ServedApp):
    """Cloudflare's REST API for R2 bucket lock rules and lifecycle (Bearer token, v4 envelope)."""

    def __init__(self, token: str = "cf-token-SECRET", account_id: str = "acc123") -> None:
        self.token, self.account_id = token, account_id
        self.locks: dict[str, list[dict[str, Any]]] = {}
        self.lifecycles: dict[str, list[dict[str, Any]]] = {}
        self.public_r2_dev: set[str] = set()                      # buckets whose r2.dev URL is on
        self.custom_domains: dict[str, list[dict[str, Any]]] = {}
        self.missing: set[str] = set()                             # buckets that do not exist: 404, code 10006
        self.server = LocalServer(self)

    def connection_json(self, token: str | None = None) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url + "/client/v4",
                           "password": token or self.token, "extra": {"account_id": self.account_id}})

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return json_reply({"success": False, "errors": [{"code": 10000, "message": "Authentication error"}],
                               "messages": [], "result": None}, 403)
        domains = re.fullmatch(rf"/client/v4/accounts/{self.account_id}/r2/buckets/([\w.-]+)/domains/(managed|custom)",
                               urlsplit(request.path).path)
        if domains and request.method == "GET":
            bucket, kind = domains.groups()
            result: dict[str, Any] = (
                {"bucketId": f"id-{bucket}", "domain": f"pub-{bucket}.r2.dev", "enabled": bucket in self.public_r2_dev}
                if kind == "managed" else {"domains": self.custom_domains.get(bucket, [])})
            return json_reply({"success": True, "errors": [], "messages": [], "result": result})
        match = re.fullmatch(rf"/client/v4/accounts/{self.account_id}/r2/buckets/([\w.-]+)/(lock|lifecycle)",
                             urlsplit(request.path).path)
        if not match or request.method != "GET":
            return json_reply({"success": False, "errors": [{"code": 7003, "message": "No route"}], "result": None}, 404)
        bucket, what = match.groups()
        if bucket in self.missing:
            return json_reply({"success": False, "errors": [{"code": 10006, "message": "The specified bucket does not exist."}],
                               "messages": [], "result": None}, 404)
        rules = (self.locks if what == "lock" else self.lifecycles).get(bucket, [])
        return json_reply({"success": True, "errors": [], "messages": [], "result": {"rules": rules}})
