"""make run's executor (maintenance.executors.LeanLocalExecutor): real forked LocalExecutor workers.

Workers idle for MAINTENANCE_IDLE_WORKER_S stop, and work queued afterwards gets workers again.
A full task run under this executor is covered by benchmarks/footprint.py (make run) and by
the Airflow configuration test below; here the worker lifecycle is driven directly.
"""

from __future__ import annotations

import gc
import multiprocessing
import time

import pytest


def _sync_until(executor, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.sync()
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def executor(monkeypatch):
    if multiprocessing.get_start_method(allow_none=True) not in (None, "fork"):
        pytest.skip("LocalExecutor forks its workers here")
    monkeypatch.setenv("MAINTENANCE_IDLE_WORKER_S", "0.3")
    from maintenance.executors import LeanLocalExecutor

    lean = LeanLocalExecutor(parallelism=2)
    lean.start()
    yield lean
    lean.end()


def test_idle_workers_stop_and_queued_work_brings_them_back(executor):
    assert len(executor.workers) == 2
    first = set(executor.workers)
    assert _sync_until(executor, lambda: not executor.workers), "idle workers were not stopped"

    # Work arrives: the executor spawns workers again. A None is the one message a worker
    # handles without a task (it exits), so the respawn is seen without running a task.
    executor.activity_queue.put(None)
    with executor._unread_messages:
        executor._unread_messages.value += 1
    executor.sync()
    assert len(executor.workers) == 2 and not first & set(executor.workers)


def test_a_running_task_keeps_its_workers(executor):
    executor.running.add("a task that is running")     # what BaseExecutor tracks while a task runs
    time.sleep(0.6)
    for _ in range(10):
        executor.sync()
        time.sleep(0.05)
    assert len(executor.workers) == 2 and all(p.is_alive() for p in executor.workers.values())
    executor.running.clear()
    assert _sync_until(executor, lambda: not executor.workers)


def test_spawning_workers_keeps_frozen_objects_frozen(executor):
    """Airflow's LocalExecutor unfreezes after spawning, which un-shares airflow_local's preload."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        executor._spawn_workers_with_gc_freeze(1)
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


def test_airflow_loads_it_from_the_configured_path(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "maintenance.executors.LeanLocalExecutor")
    from airflow.executors.executor_loader import ExecutorLoader

    loaded = ExecutorLoader.import_executor_cls(ExecutorLoader.get_executor_names()[0])[0]
    assert loaded.__name__ == "LeanLocalExecutor"
