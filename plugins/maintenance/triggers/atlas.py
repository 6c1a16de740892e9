"""Wait for an Atlas snapshot or restore job in the triggerer, without holding a worker slot.

aiohttp with HTTP Digest (aiohttp's DigestAuthMiddleware answers the 401 challenge) or, for a
service-account connection, an OAuth Bearer token. The trigger yields exactly one event:
  {"status": "done", "item": {...}}                       the snapshot/job reached a final state
  {"status": "timeout", "item": {...} | None}            the deadline passed first
  {"status": "error", "reason": ..., "message": ...}     a call failed for good (e.g. 401)
Transient faults (timeouts, 5xx, 429 with Retry-After) are retried at the next poll.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from maintenance.hooks.http_policy import RETRYABLE, classify_exception, classify_status, parse_retry_after

V2023 = "application/vnd.atlas.2023-01-01+json"
MAX_TRANSIENT = 20          # consecutive transient failures before giving up


def is_final(kind: str, item: dict[str, Any]) -> bool:
    if kind == "snapshot":
        return item.get("status") in ("completed", "failed")
    # restore job: a delivery URL, or a terminal flag
    return bool(item.get("deliveryUrl")) or any(item.get(flag) for flag in ("failed", "cancelled", "expired"))


def base_url(host: str | None, schema: str | None, port: int | None) -> str:
    """The same base URL HttpHook builds from a connection (host, schema, port)."""
    host = host or "https://cloud.mongodb.com"
    url = host if "://" in host else f"{schema or 'http'}://{host}"
    return f"{url}:{port}" if port else url


class AtlasPollTrigger(BaseTrigger):
    def __init__(self, conn_id: str, path: str, kind: str, deadline: float, poll_seconds: float = 30.0,
                 carry: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conn_id, self.path, self.kind = conn_id, path, kind
        self.deadline, self.poll_seconds = float(deadline), float(poll_seconds)
        # Echoed in the event: what the operator needs when it resumes (dag.test() resumes with
        # the event only, without defer()'s kwargs, so the state travels with the event).
        self.carry = carry or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("maintenance.triggers.atlas.AtlasPollTrigger",
                {"conn_id": self.conn_id, "path": self.path, "kind": self.kind,
                 "deadline": self.deadline, "poll_seconds": self.poll_seconds, "carry": self.carry})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self._poll():
            yield TriggerEvent({**event.payload, "carry": self.carry})

    async def _poll(self) -> AsyncIterator[TriggerEvent]:
        import aiohttp
        from airflow.sdk import BaseHook

        try:
            conn = await BaseHook.aget_connection(self.conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and friends
            yield TriggerEvent({"status": "error", "reason": "not_configured",
                                "message": f"connection '{self.conn_id}' is not available ({type(exc).__name__})"})
            return
        url = base_url(conn.host, conn.schema, conn.port).rstrip("/") + self.path
        service_account = str(conn.extra_dejson.get("auth", "digest")).lower() in ("service_account", "oauth")
        middlewares = () if service_account else (aiohttp.DigestAuthMiddleware(conn.login or "", conn.password or ""),)
        secrets = [s for s in (conn.password,) if s]
        last: dict[str, Any] | None = None
        transient = 0
        async with aiohttp.ClientSession(middlewares=middlewares, timeout=aiohttp.ClientTimeout(total=30)) as session:
            headers = {"Accept": V2023}
            while True:
                wait = self.poll_seconds
                try:
                    if service_account and "Authorization" not in headers:
                        token = await self._token(session, url, conn)
                        if token is None:
                            yield TriggerEvent({"status": "error", "reason": "unauthorized", "message": (
                                f"Atlas token request refused (check the credentials of connection '{self.conn_id}')")})
                            return
                        headers["Authorization"] = f"Bearer {token}"
                    async with session.get(url, headers=headers) as response:
                        reason = classify_status(response.status)
                        if reason is None:
                            body = await response.json(content_type=None)
                            if not isinstance(body, dict):
                                raise ValueError("not a JSON object")
                            last, transient = body, 0
                            if is_final(self.kind, body):
                                yield TriggerEvent({"status": "done", "item": body})
                                return
                        elif reason in RETRYABLE:
                            transient += 1
                            wait = parse_retry_after(response.headers.get("Retry-After")) or wait
                            self.log.info("GET %s: HTTP %s; polling again", self.path, response.status)
                        else:
                            message = f"GET {self.path}: HTTP {response.status}"
                            if reason == "unauthorized":
                                message += f" (check the credentials of connection '{self.conn_id}')"
                            yield TriggerEvent({"status": "error", "reason": reason, "message": message})
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                    reason, text = classify_exception(exc)
                    if isinstance(exc, ValueError) and not isinstance(exc, aiohttp.ClientError):
                        reason, text = "malformed_response", "response is not a JSON object"
                    for secret in secrets:
                        text = text.replace(secret, "***")
                    if reason not in RETRYABLE:
                        yield TriggerEvent({"status": "error", "reason": reason, "message": f"GET {self.path}: {text}"})
                        return
                    transient += 1
                if transient >= MAX_TRANSIENT:
                    yield TriggerEvent({"status": "error", "reason": "connection_error",
                                        "message": f"GET {self.path}: {transient} failures in a row"})
                    return
                left = self.deadline - time.time()
                if left <= 0:
                    yield TriggerEvent({"status": "timeout", "item": last})
                    return
                await asyncio.sleep(max(0.0, min(wait, left)))

    async def _token(self, session: Any, url: str, conn: Any) -> str | None:
        import aiohttp

        root = url.split("/api/atlas/", 1)[0]
        async with session.post(f"{root}/api/oauth/token", data={"grant_type": "client_credentials"},
                                auth=aiohttp.BasicAuth(conn.login or "", conn.password or "")) as response:
            if response.status in (401, 403):
                return None
            if response.status >= 400:
                raise aiohttp.ClientConnectionError(f"token endpoint answered HTTP {response.status}")
            body = await response.json(content_type=None)
            if not isinstance(body, dict) or not body.get("access_token"):
                raise ValueError("no access_token")
            return str(body["access_token"])
