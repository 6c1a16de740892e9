"""The deployments watcher (issue 19): Vercel's production deployments polled every
`vercel.watch_interval` in the triggerer; one asset event per deployment that turns READY or ERROR.

    Asset("vercel_deployments", watchers=[AssetWatcher("vercel_deployments", VercelDeploymentsTrigger(interval))])
    post_deploy_verification: schedule = that asset (manual runs take a deployment id)

The pattern of the uptime watcher (triggers/uptime_watch.py): run() never raises (an error is
logged and the next poll waits longer), the constructor cannot raise, its kwargs are a number and
a connection name, nothing blocks the loop (config, imports and Vercel calls go through
asyncio.to_thread, the connection through aget_connection).

What it remembers, in the asset state store:
    deployments  {"since": ms, "announced": {uid: created_ms}}  (checks/deploys.announcements):
                 a restarted trigger announces no deployment twice and misses none that turned
                 READY/ERROR while it was down. The memory is saved after each event's yield: a
                 triggerer killed between the two announces that deployment again, and the DAG
                 verifies a deployment once (its stored verdict).
No `vercel` section (or enabled: false) or no connection: the trigger polls nothing (logged once).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from maintenance.triggers.uptime_watch import _redacted, _seconds, backoff

log = logging.getLogger(__name__)

ASSET_NAME = "vercel_deployments"
DEFAULT_INTERVAL = 60.0
MEMORY_KEY = "deployments"


def deployments_asset(interval_s: float) -> Any:
    """The asset whose watcher is this trigger (DAG files: cheap, no HTTP import)."""
    from airflow.sdk import Asset, AssetWatcher

    return Asset(name=ASSET_NAME, watchers=[AssetWatcher(name=ASSET_NAME,
                                                         trigger=VercelDeploymentsTrigger(interval=interval_s))])


def deploy_schedule(interval_s: float) -> Any:
    """The asset when the watcher is on (a vercel section, watch_interval > 0), else None (by hand only)."""
    return [deployments_asset(interval_s)] if interval_s else None


class VercelDeploymentsTrigger(BaseEventTrigger):
    """Poll every `interval` seconds; yield once per production deployment turning READY or ERROR."""

    def __init__(self, interval: Any = DEFAULT_INTERVAL, **_ignored: Any) -> None:
        # Never raises: garbage kwargs become defaults (a raise other than TypeError stops the triggerer).
        try:
            super().__init__()
        except Exception:  # noqa: BLE001
            self.asset_state_store = None
        self.interval = _seconds(interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "maintenance.triggers.vercel_deployments.VercelDeploymentsTrigger", {"interval": self.interval}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poll = _Poll(getattr(self, "asset_state_store", None))
        failures = 0
        while True:
            delay = self.interval
            try:
                async for payload in poll.new_deployments():
                    yield TriggerEvent(payload)
                    await poll.announced(payload)   # after the yield: see the module docstring
                await poll.settle()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a raise restarts the trigger every 2-3 s, forever
                failures += 1
                delay = backoff(failures, self.interval)
                log.warning("deployments watcher: poll failed (%d in a row): %s: %s; next try in %.1fs", failures,
                            type(exc).__name__, _redacted(exc), delay, exc_info=failures == 1)
            await asyncio.sleep(delay)


class _Poll:
    """One watcher's polls: the memory between them, and how to reach Vercel."""

    def __init__(self, state_store: Any) -> None:
        self.state_store = state_store
        self.memory: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        self.idle_reason: str | None = None
        self.loaded = False

    async def _recall(self) -> Any:
        if self.state_store is None:
            return None
        return await self.state_store.aget(MEMORY_KEY)

    async def _save(self, memory: dict[str, Any]) -> None:
        self.memory = memory
        if self.state_store is None:
            return
        try:
            await self.state_store.aset(MEMORY_KEY, memory)
        except Exception as exc:  # noqa: BLE001 - the API server may be restarting; memory stays in-process
            log.warning("deployments watcher: asset state store not updated (%s): a restart now would "
                        "announce the last deployment again", type(exc).__name__)

    def _idle(self, reason: str) -> None:
        if self.idle_reason != reason:
            log.info("deployments watcher: polling nothing: %s", reason)
        self.idle_reason = reason

    async def new_deployments(self) -> AsyncIterator[dict[str, Any]]:
        if not self.loaded:   # first imports (pydantic, sqlalchemy, requests) off the loop
            await asyncio.to_thread(_import_modules)
        from maintenance.config import get_config
        from maintenance.results import utcnow

        config = await asyncio.to_thread(get_config)
        section = config.vercel
        if section is None or not section.enabled:
            self._idle("no enabled vercel section in the config")
            return
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = await BaseHook.aget_connection(section.conn_id)
        except AirflowNotFoundException:
            self._idle(f"no Airflow connection '{section.conn_id}'")
            return
        self.idle_reason = None
        hook = await asyncio.to_thread(_hook, section.conn_id, connection)
        if not self.loaded:
            self.memory = await self._recall()
            self.loaded = True
        from maintenance.checks.deploys import announcements, facts

        memory = self.memory if isinstance(self.memory, dict) else None
        if memory is None:
            found = await asyncio.to_thread(hook.newest_production, 20)
        else:
            since = int(memory.get("since") or 0)
            found = await asyncio.to_thread(hook.deployments, since, int(utcnow().timestamp() * 1000) + 60_000)
        due, self.after = announcements(found, memory)
        if memory is None:
            log.info("deployments watcher: first poll: %d production deployment(s) taken as known", len(found))
            await self._save(self.after)
            return
        for deployment in due:
            payload = {**facts(deployment), "announced_at": utcnow().isoformat()}
            log.info("deployments watcher: %s turned %s", payload["uid"], payload["state"])
            yield payload

    async def announced(self, payload: dict[str, Any]) -> None:
        memory = dict(self.memory or {})
        memory["announced"] = {**(memory.get("announced") or {}), payload["uid"]: payload["created"]}
        await self._save(memory)

    async def settle(self) -> None:
        if self.after is not None and self.after != self.memory:
            await self._save(self.after)
        self.after = None


def _import_modules() -> None:
    import maintenance.checks.deploys  # noqa: F401
    import maintenance.config  # noqa: F401
    import maintenance.hooks.vitals  # noqa: F401


def _hook(conn_id: str, connection: Any) -> Any:
    from maintenance.hooks.vitals import VercelHook   # requests, the HTTP policy: imported off the loop

    return VercelHook(conn_id, connection=connection)
