"""Wait for an Atlas snapshot or restore job in the triggerer, without holding a worker slot.

The trigger polls through the same AtlasHook as the tasks (HTTP Digest or a service-account
OAuth token that is renewed before it expires, the versioned Accept header, the one HTTP
policy): its blocking calls run in a thread, off the triggerer's event loop, and the
connection is fetched asynchronously. The trigger yields exactly one event:
  {"status": "done", "item": {...}}                       the snapshot/job reached a final state
  {"status": "timeout", "item": {...} | None}            the deadline passed first
  {"status": "error", "reason": ..., "message": ...}     a call failed for good (e.g. 401)
Transient faults (timeouts, 5xx, 429) are retried by the policy, then at the next poll.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

MAX_TRANSIENT = 20          # consecutive failed polls (each already retried by the policy) before giving up


def is_final(kind: str, item: dict[str, Any]) -> bool:
    if kind == "snapshot":
        return item.get("status") in ("completed", "failed")
    # restore job: a delivery URL, or a terminal flag
    return bool(item.get("deliveryUrl")) or any(item.get(flag) for flag in ("failed", "cancelled", "expired"))


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
        from airflow.sdk import BaseHook

        from maintenance.hooks.atlas import AtlasHook
        from maintenance.hooks.http_policy import ProviderError

        try:
            conn = await BaseHook.aget_connection(self.conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and friends
            yield TriggerEvent({"status": "error", "reason": "not_configured",
                                "message": f"connection '{self.conn_id}' is not available ({type(exc).__name__})"})
            return
        hook = AtlasHook(self.conn_id, connection=conn)
        last: dict[str, Any] | None = None
        transient = 0
        try:
            while True:
                try:
                    item = await asyncio.to_thread(hook.call, "GET", self.path)
                except ProviderError as exc:
                    if not exc.retryable:
                        yield TriggerEvent({"status": "error", "reason": exc.reason, "message": str(exc)})
                        return
                    transient += 1
                    self.log.info("%s; polling again", exc)
                    if transient >= MAX_TRANSIENT:
                        yield TriggerEvent({"status": "error", "reason": exc.reason,
                                            "message": f"{exc} ({transient} failed polls in a row)"})
                        return
                else:
                    last, transient = item, 0
                    if is_final(self.kind, item):
                        yield TriggerEvent({"status": "done", "item": item})
                        return
                left = self.deadline - time.time()
                if left <= 0:
                    yield TriggerEvent({"status": "timeout", "item": last})
                    return
                await asyncio.sleep(min(self.poll_seconds, left))
        finally:
            hook.close()
