"""Fixtures of the uptime watcher's tests (issue 16).

The asset state store is Airflow's own: AssetStateStoreAccessors, whose messages reach the
execution API (in-process, on the test's metadata DB) through the same request handlers the
triggerer's supervisor uses; only the socket between trigger and supervisor is left out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags"


class Switchable:
    def __init__(self):
        self.down = False

    def __call__(self, request):
        return (503, {}, "maintenance") if self.down else (200, {"Content-Type": "text/html"}, "<h1>Welcome</h1>")


class SupervisorStandIn:
    """The triggerer supervisor's handling of the asset-state-store messages, in this process."""

    def __init__(self):
        from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

        self.client = InProcessTestSupervisor._api_client()

    def send(self, msg):
        from airflow.sdk.execution_time import request_handlers as handlers
        from airflow.sdk.execution_time.comms import (
            DeleteAssetStateStoreByName, GetAssetStateStoreByName, SetAssetStateStoreByName,
        )

        if isinstance(msg, DeleteAssetStateStoreByName):
            handlers.handle_delete_asset_state_store_by_name(self.client, msg)
            return None
        if isinstance(msg, GetAssetStateStoreByName):
            return handlers.handle_get_asset_state_store_by_name(self.client, msg)[0]
        if isinstance(msg, SetAssetStateStoreByName):
            handlers.handle_set_asset_state_store_by_name(self.client, msg)
            return None
        raise AssertionError(f"unexpected message {msg!r}")

    async def asend(self, msg):
        return await asyncio.to_thread(self.send, msg)


@pytest.fixture(scope="module")
def registered_asset(airflow_db):
    """uptime_monitor parsed and synced as the DAG processor does: the uptime_watcher asset exists."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = BundleDagBag(dag_folder=str(DAGS / "uptime_monitor.py"), bundle_path=DAGS, bundle_name="dags-folder")
    sync_bag_to_db(bag, "dags-folder", None)
    return "uptime_watcher"


@pytest.fixture
def state_store(registered_asset, monkeypatch):
    from airflow.sdk import Asset
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SupervisorStandIn(), raising=False)
    store = AssetStateStoreAccessors(inlets=[Asset(name=registered_asset)])
    for key in ("last_sweep", "unannounced"):   # each test starts with a watcher that never ran
        store.delete(key)
    return store


class Events:
    """A trigger's run() as the triggerer drives it: the next event, or None within a wait."""

    def __init__(self, trigger):
        self.agen = trigger.run()
        self.pending = None

    async def within(self, seconds):
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.agen.__anext__())
        done, _ = await asyncio.wait({self.pending}, timeout=seconds)
        if not done:
            return None
        event, self.pending = self.pending.result(), None
        return event.payload

    async def next(self, timeout=20.0):
        event = await self.within(timeout)
        assert event is not None, f"no event within {timeout}s"
        return event

    async def stop(self):
        """The triggerer stopping: the trigger's task is cancelled."""
        if self.pending is not None:
            self.pending.cancel()
            try:
                await self.pending
            except (asyncio.CancelledError, StopAsyncIteration):
                pass
        await self.agen.aclose()


