"""LeanLocalExecutor: Airflow's LocalExecutor for one small machine (`make run`, issue 11).

Two departures from LocalExecutor, both about idle memory (benchmarks/footprint.py):

- No gc.freeze()/gc.unfreeze() around forking workers. scripts/airflow_local.py forks every
  component from one parent that froze its preloaded modules, so they stay shared. Airflow's
  unfreeze() after spawning workers also unfreezes those, and the scheduler's next full
  collection then writes to every one of them, copying the pages: measured, the scheduler's
  private memory went from about 53 MB to 119 MB.
- Workers idle for MAINTENANCE_IDLE_WORKER_S seconds (default 60; 0 keeps them) are stopped,
  the way LocalExecutor.end() stops them (one None message each), and spawned again when work
  is queued. LocalExecutor keeps `parallelism` forked workers for good (about 50 MB each);
  here they exist while there is work. A None is only sent when nothing is queued or running,
  and messages are taken in order, so a worker finishes what it holds before it takes its None.
"""

from __future__ import annotations

import os
import time

from airflow.executors.local_executor import LocalExecutor


class LeanLocalExecutor(LocalExecutor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_worker_s = float(os.environ.get("MAINTENANCE_IDLE_WORKER_S", "60"))
        self._idle_since: float | None = None
        self._stopping: set[int] = set()      # workers sent a None, not yet exited

    def _spawn_workers_with_gc_freeze(self, spawn_number: int) -> None:
        for _ in range(spawn_number):
            self._spawn_worker()

    def sync(self) -> None:
        super().sync()    # reaps exited workers, spawns workers for queued work
        self._stopping &= set(self.workers)
        self._stop_idle_workers()

    def _stop_idle_workers(self) -> None:
        with self._unread_messages:
            queued = self._unread_messages.value
        if self.idle_worker_s <= 0 or queued > 0 or self.running or not self.workers:
            self._idle_since = None
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            return
        if now - self._idle_since < self.idle_worker_s:
            return
        idle = [pid for pid, proc in self.workers.items() if pid not in self._stopping and proc.is_alive()]
        if idle:
            self.log.info("Stopping %d LocalExecutor workers idle for %.0f s", len(idle), now - self._idle_since)
            for pid in idle:
                self.activity_queue.put(None)
                self._stopping.add(pid)
