"""The uptime watcher (issue 16): the endpoints swept every `uptime.watch_interval` in the
triggerer, an asset event only when an alert opens or resolves (Airflow event-driven scheduling).

    Asset("uptime_watcher", watchers=[AssetWatcher("uptime_watcher", UptimeWatchTrigger(interval, groups))])
    uptime_monitor: schedule = AssetOrTimeSchedule(5-minute cron, or that asset)

Each sweep (one loop, forever, in the triggerer):
1. the config is read in a thread; the endpoints without a login flow are swept by the one
   sweep coroutine (checks/uptime.py sweep_async, which sweep() also runs): a login every 30 s
   would flood the admin's security log, so login flows stay with the 5-minute run;
2. the results go through the one alert path, alerting.assess() in a thread: stored in one
   batched write, each check's alert state moved (thresholds counted in sweeps, maintenance
   windows honoured) and due alerts put in the outbox, in one locked transaction. The alert
   state is the same row the 5-minute run moves: one state per check, whichever path judged it;
3. if an alert opened or resolved, one TriggerEvent names the changed checks and their results
   (no secret: the sweep redacts summaries and targets). uptime_monitor's asset-triggered run
   delivers the outbox at once through the one notifier and starts the runbook.

What the trigger remembers across a triggerer restart, in the asset state store (the alert
states themselves are in the results store, so a restart can neither re-page nor forget them):
    last_sweep   {"at", "sweep", "checks", "failing"}   the next sweep waits out the interval
    unannounced  the last event's payload: replayed after a restart if one of its messages
                 is still undelivered (the triggerer may have died before the event was saved)

run() never raises: an error is logged and the next try waits longer (interval, doubled up to
10 minutes); a raise would restart the trigger every 2-3 s with no backoff. The constructor
cannot raise (in 3.3.2 a constructor error other than TypeError stops the whole triggerer),
and its kwargs are numbers and group names only. Nothing blocks the event loop: config,
imports and database work go through asyncio.to_thread, the connection through aget_connection.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, AsyncIterator

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from maintenance.results import ResultsStore

log = logging.getLogger(__name__)

ASSET_NAME = "uptime_watcher"          # the asset uptime_monitor is scheduled on (and its watcher's name)
SWEEP_PREFIX = "watcher__"              # run_id of the watcher's results: watcher__<sweep start>
DAG_ID, TASK_ID = "uptime_monitor", "check_endpoints"   # the task whose job the watcher does continuously
DEFAULT_INTERVAL = 30.0
MIN_INTERVAL = 0.2                      # kwargs floor (the config's floor is 10 s; tests go faster)
MAX_BACKOFF = 600.0
ANNOUNCED = ("alert", "recovered")      # reminders wait for the next delivery (the 5-minute run)


def watcher_asset(interval_s: float, groups: list[str] | None = None) -> Any:
    """The asset whose watcher is the uptime trigger (DAG files: cheap, no aiohttp import)."""
    from airflow.sdk import Asset, AssetWatcher

    trigger = UptimeWatchTrigger(interval=interval_s, groups=groups or [])
    return Asset(name=ASSET_NAME, watchers=[AssetWatcher(name=ASSET_NAME, trigger=trigger)])


def uptime_schedule(cron: str, interval_s: float) -> Any:
    """The cron alone when the watcher is off (interval 0), else the cron OR the watcher's events."""
    if not interval_s:
        return cron
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"),
                               assets=[watcher_asset(interval_s)])


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return DEFAULT_INTERVAL
    if seconds != seconds or seconds in (float("inf"), float("-inf")):   # NaN, infinities
        return DEFAULT_INTERVAL
    return min(max(seconds, MIN_INTERVAL), 3600.0)


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    try:
        return sorted({str(v) for v in value if isinstance(v, str) and v}) if value else []
    except TypeError:
        return []


def backoff(failures: int, interval: float) -> float:
    """Seconds before the next try after `failures` failed sweeps in a row."""
    return min(interval * 2 ** min(max(failures, 1), 12), MAX_BACKOFF)


def change_of(due: Any) -> dict[str, Any]:
    """One changed check for the event payload: what the alert says, nothing secret."""
    r = due.result
    return {"kind": due.kind, "check": r.check, "group": r.group, "status": r.status, "reason": r.reason,
            "summary": r.summary[:300], "target": r.target, "critical": r.critical, "runbook": r.runbook,
            "provider": r.provider, "failures": due.failures,
            "failing_since": due.failing_since.isoformat() if due.failing_since else None,
            "checked_at": r.time.isoformat(), "response_ms": r.metrics.get("response_ms"),
            "outbox_id": due.outbox_id}


class UptimeWatchTrigger(BaseEventTrigger):
    """Sweep every `interval` seconds; yield only when an alert opens or resolves."""

    def __init__(self, interval: Any = DEFAULT_INTERVAL, groups: Any = None, **_ignored: Any) -> None:
        # Never raises: garbage kwargs (an older version's, a hand-edited row) become defaults.
        try:
            super().__init__()
        except Exception:  # noqa: BLE001 - the triggerer must survive whatever the base does
            self.asset_state_store = None
        self.interval = _seconds(interval)
        self.groups = _names(groups)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "maintenance.triggers.uptime_watch.UptimeWatchTrigger", {"interval": self.interval,
                                                                        "groups": self.groups}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = _Watch(self.interval, self.groups, self.asset_state_store)
        failures = 0
        delay: float | None = None
        while True:
            try:
                if delay is None:   # first pass: replay an unannounced event, wait out the interval
                    delay = await watch.resume()
                    if watch.replay is not None:
                        yield TriggerEvent(watch.replay)
                        watch.replay = None
                if delay > 0:
                    await asyncio.sleep(delay)
                event = await watch.sweep()
                if event is not None:
                    yield TriggerEvent(event)
                failures, delay = 0, self.interval
            except Exception as exc:  # noqa: BLE001 - a raise restarts the trigger every 2-3 s, forever
                failures += 1
                delay = backoff(failures, self.interval)
                log.warning("uptime watcher: sweep failed (%d in a row): %s: %s; next try in %.1fs", failures,
                            type(exc).__name__, _redacted(exc), delay, exc_info=failures == 1)


def _redacted(exc: BaseException) -> str:
    try:
        from maintenance.hooks.http_policy import redact

        return redact(str(exc).splitlines()[0] if str(exc) else "")[:300]
    except Exception:  # noqa: BLE001
        return "(message withheld)"


class _Watch:
    """One watcher's sweeps: the state a run() keeps between them (modules, store, counters)."""

    def __init__(self, interval: float, groups: list[str], state_store: Any) -> None:
        self.interval, self.groups, self.state_store = interval, groups, state_store
        self.modules: dict[str, Any] | None = None
        self.store: ResultsStore | None = None
        self.store_conn_id: str | None = None
        self.replay: dict[str, Any] | None = None
        self.sweeps = 0
        self.idle_logged = False

    async def _load(self) -> dict[str, Any]:
        if self.modules is None:   # first imports (aiohttp, sqlalchemy, pydantic) off the loop
            self.modules = await asyncio.to_thread(_import_modules)
        return self.modules

    async def _remember(self, key: str, value: Any) -> None:
        """Best effort: the alert state is already committed, and the event must still go out."""
        if self.state_store is None:
            return
        try:
            await self.state_store.aset(key, value)
        except Exception as exc:  # noqa: BLE001 - the API server may be restarting
            log.warning("uptime watcher: asset state store not updated (%s: %s): a restart now would "
                        "sweep at once and could not replay this event", key, type(exc).__name__)

    async def _recall(self, key: str) -> Any:
        return await self.state_store.aget(key) if self.state_store is not None else None

    async def _store(self, config: Any) -> ResultsStore:
        conn_id = config.results.conn_id
        if self.store is None or self.store_conn_id != conn_id:
            m = await self._load()
            try:
                conn = await m["BaseHook"].aget_connection(conn_id)
            except m["AirflowNotFoundException"]:
                url = await asyncio.to_thread(m["url_without_connection"], conn_id)
            else:
                url = m["url_of_connection"](conn)
            self.store = await asyncio.to_thread(m["store_at"], url)   # opening migrates: a thread
            self.store_conn_id = conn_id
        return self.store

    async def resume(self) -> float:
        """After a (re)start: what the last life of this trigger left; seconds to the next sweep."""
        if self.state_store is None:
            log.warning("uptime watcher: no asset state store (not run as an asset watcher): a restart "
                        "will sweep at once and cannot replay an unannounced event")
            return 0.0
        last = await self._recall("last_sweep") or {}
        self.sweeps = int(last.get("sweep") or 0) if isinstance(last, dict) else 0
        pending = await self._recall("unannounced")
        if isinstance(pending, dict) and pending.get("changes"):
            ids = [c["outbox_id"] for c in pending["changes"] if c.get("outbox_id") is not None]
            m = await self._load()
            config = await asyncio.to_thread(m["get_config"])
            store = await self._store(config)
            waiting = await asyncio.to_thread(store.pending_among, ids)
            changes = [c for c in pending["changes"] if c.get("outbox_id") in waiting]
            if changes:
                log.info("uptime watcher: replaying %d undelivered change(s) of sweep %s after a restart",
                         len(changes), pending.get("sweep"))
                self.replay = {**pending, "changes": changes, "replayed": True}
        at = last.get("at") if isinstance(last, dict) else None
        if not at:
            return 0.0
        from maintenance.results import utcnow

        elapsed = (utcnow() - datetime.fromisoformat(at)).total_seconds()
        return min(max(self.interval - elapsed, 0.0), self.interval)

    async def sweep(self) -> dict[str, Any] | None:
        """One sweep, assessed; the event payload when an alert opened or resolved, else None."""
        m = await self._load()
        config = await asyncio.to_thread(m["get_config"])
        endpoints = [e for e in config.endpoints
                     if e.login is None and (not self.groups or e.group in self.groups)]
        if not endpoints:
            if not self.idle_logged:
                log.info("uptime watcher: no endpoint to watch (none configured, or all have a login flow)")
                self.idle_logged = True
            return None
        self.idle_logged = False
        store = await self._store(config)
        started = m["utcnow"]()
        sweep_id = f"{SWEEP_PREFIX}{started.strftime('%Y%m%dT%H%M%S.%f')}"
        uptime = config.uptime
        # The coroutine sweep() runs (one sweep implementation), awaited on the triggerer's loop;
        # without sweep()'s collector tweak, which is process-wide and the loop runs other triggers.
        results = await m["sweep_async"](endpoints, uptime.concurrency, uptime.user_agent, ca_file=uptime.ca_file,
                                         body_limit=uptime.body_limit)
        assessment = await asyncio.to_thread(
            m["assess"], store, config, results, dag_id=DAG_ID, run_id=sweep_id, task_id=TASK_ID,
            cancel_undelivered=False)
        self.sweeps += 1
        failing = sum(1 for r in results if r.failed)
        changes = [change_of(d) for d in assessment.due if d.kind in ANNOUNCED]
        await self._remember("last_sweep", {"at": started.isoformat(), "sweep": self.sweeps,
                                            "checks": len(results), "failing": failing})
        if not changes:
            return None
        event = {"sweep": sweep_id, "at": started.isoformat(), "interval_s": self.interval, "changes": changes}
        await self._remember("unannounced", event)   # before the yield: a crash after it replays it
        log.info("uptime watcher: %s", "; ".join(f"{c['check']} {c['kind']}" for c in changes))
        return event


def _import_modules() -> dict[str, Any]:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from maintenance.alerting import assess
    from maintenance.checks.uptime import sweep_async
    from maintenance.config import get_config
    from maintenance.hooks.results_db import store_at, url_of_connection, url_without_connection
    from maintenance.results import utcnow

    return {"BaseHook": BaseHook, "AirflowNotFoundException": AirflowNotFoundException, "assess": assess,
            "sweep_async": sweep_async, "get_config": get_config, "store_at": store_at,
            "url_of_connection": url_of_connection, "url_without_connection": url_without_connection,
            "utcnow": utcnow}


def watcher_events(context: Any) -> list[dict[str, Any]] | None:
    """The watcher's event payloads this run consumed (oldest first), or None when it consumed none
    (a scheduled or manual run: the full sweep)."""
    try:
        events = context["triggering_asset_events"]
        from airflow.sdk import Asset

        consumed = list(events[Asset(name=ASSET_NAME)])
    except (KeyError, TypeError, LookupError):
        return None
    payloads = [(e.extra or {}).get("payload") for e in sorted(consumed, key=lambda e: e.timestamp)]
    payloads = [p for p in payloads if isinstance(p, dict)]
    return payloads or None


def stale_after(interval_s: float) -> timedelta:
    """How old the watcher's newest sample may be before uptime_monitor says it has stopped."""
    return timedelta(seconds=3 * interval_s)
