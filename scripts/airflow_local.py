"""`make run`'s Airflow: the components `airflow standalone` runs, lighter, and one Ctrl-C stops them.

scripts/run.sh migrates the metadata DB and then execs this. It replaces `airflow standalone`,
which is one more full Airflow process (about 150 MB) that only relays output, and which a
single Ctrl-C does not reliably stop: with Airflow's default 32 LocalExecutor workers it was
still there 60 s later, and 45 s with 4 (benchmarks/footprint.py measured both).

- One parent imports Airflow once and forks the scheduler, DAG processor, triggerer and API
  server from it, so the imported modules stay shared copy-on-write between them (collection
  off while preloading, gc.freeze() before the forks). Each child then runs the ordinary
  `airflow <component>` command line. The scheduler's executor, LeanLocalExecutor, keeps them
  frozen (plugins/maintenance/executors.py).
- Once all run, the parent re-execs itself as a bare supervisor (`--supervise name=pid ...`,
  stdlib only): the preloaded pages that every component has since copied would otherwise stay
  resident in the parent for nothing.
- Each component runs in a process group of its own. On SIGINT or SIGTERM (Ctrl-C reaches
  this process, in the terminal's foreground group) the parent passes one SIGINT to every
  component's group, as a terminal's Ctrl-C would, a second one to a group still running after
  half of MAINTENANCE_STOP_GRACE seconds (default 10; Airflow's exit from a signal handler is
  lost when the signal lands in a finalizer), and kills what is left at the end of it
  (LocalExecutor workers ignore SIGINT and SIGTERM and wait for their scheduler). If one
  component exits by itself, the others are stopped the same way: half an Airflow would look
  alive and do nothing.
- The log servers (`serve-logs`) of the scheduler and triggerer are not started unless
  MAINTENANCE_SERVE_LOGS=true: on one machine the API server reads the task logs from the
  log folder. Without them a *running* task's log page also lists a "could not read served
  logs" source; the log itself shows.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import time

SERVE_LOGS = os.environ.get("MAINTENANCE_SERVE_LOGS", "false").lower() in ("1", "true", "yes")
GRACE_S = float(os.environ.get("MAINTENANCE_STOP_GRACE", "10"))
COMPONENTS = {      # in start order; the scheduler waits for the API server (see start_all)
    "api-server": ["api-server"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"] + ([] if SERVE_LOGS else ["--skip-serve-logs"]),
    "scheduler": ["scheduler"] + ([] if SERVE_LOGS else ["--skip-serve-logs"]),
}
API_WAIT_S = 300


def say(text: str) -> None:
    print(f"=== {text}", flush=True)


# What the components import anyway: imported once in the parent, shared by the forks. The
# first seven every component needs; the rest are what two or more of them imported after the
# fork (measured by diffing sys.modules in each). Nothing here opens a database connection or
# starts a thread (a fork would copy them).
PRELOAD = (
    "airflow.__main__",    # configuration, settings, the ORM engine (not connected), the CLI
    "airflow.api_fastapi.app", "airflow.dag_processing.manager", "airflow.executors.local_executor",
    "airflow.jobs.scheduler_job_runner", "airflow.jobs.triggerer_job_runner", "airflow.models",
    "airflow.api_fastapi.execution_api.app", "airflow.api_fastapi.core_api.openapi.exceptions",
    "airflow.api_fastapi.common.db.common", "airflow.api.common.trigger_dag",
    "alembic.command", "alembic.migration", "alembic.runtime.migration", "alembic.script", "mako.exceptions",
    "airflow.utils.serve_logs", "airflow.cli.commands.daemon_utils", "airflow.jobs.dag_processor_job_runner",
    "airflow.migrations.utils", "airflow.models.renderedtifields", "airflow.models.dag_favorite",
    "airflow.models.task_state_store", "airflow.state.metastore", "airflow.timetables.trigger",
    "airflow.sdk.bases.operatorlink", "airflow.sdk.bases.skipmixin", "airflow.serialization.definitions.mappedoperator",
    "airflow.sdk._shared.logging.remote", "airflow.utils.memray_utils", "uvicorn", "watchfiles", "daemon",
    "a2wsgi", "tomllib", "stringprep", "timeit", "multiprocessing",
)


def start(name: str, argv: list[str]) -> int:
    pid = os.fork()
    if pid:
        try:
            os.setpgid(pid, pid)     # also here, so the group exists whichever side runs first
        except OSError:
            pass
        return pid
    # the child: its own process group, default signal handling, no terminal input
    try:
        os.setpgid(0, 0)
        try:
            from setproctitle import setproctitle     # Airflow's own dependency

            setproctitle(f"airflow {name}")
        except ImportError:
            pass
        gc.enable()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.argv = ["airflow", *argv]
        from airflow.__main__ import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def api_answers() -> bool:
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{os.environ.get('AIRFLOW__API__PORT', '8080')}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True             # it answers
    except OSError:
        return False


def signal_group(pgid: int, signum: int) -> None:
    """Send a signal to a component's process group; one that is gone already is no error."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def reap(children: dict[int, str]) -> list[tuple[str, int]]:
    """Collect the components that exited: [(name, exit status)]."""
    done = []
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in children:
            done.append((children.pop(pid), os.waitstatus_to_exitcode(status)))
    return done


def start_all(stop_requested: list[int]) -> tuple[dict[int, str], int]:
    """Fork every component from one preloaded parent: ({pid: name}, exit code so far)."""
    # As the gc docs advise for fork without exec: no collection in the parent (it would free
    # objects and leave holes in shared pages that the children's allocations then fill, copying
    # the page), everything frozen before the forks, collection enabled again in each child.
    gc.disable()
    for module in PRELOAD:
        importlib.import_module(module)
    gc.freeze()
    children: dict[int, str] = {}
    exit_code = 0
    for name, argv in COMPONENTS.items():
        if name == "scheduler":
            # Tasks reach Airflow through the API server's execution API: a task queued before
            # it listens fails its first try ("connection refused"), so the scheduler waits.
            waited = time.monotonic()
            while not stop_requested and not api_answers() and time.monotonic() - waited < API_WAIT_S:
                for gone, status in reap(children):
                    say(f"{gone} exited ({status}) while starting")
                    exit_code = 1
                    stop_requested.append(0)
                time.sleep(0.5)
            if stop_requested:
                break
        children[start(name, argv)] = name
    return children, exit_code


def become_supervisor(children: dict[int, str]) -> None:
    """Exec this script again as a bare supervisor of the running components (same pid).

    The preloaded parent's pages that every component has since copied for itself would stay
    resident in the parent for nothing (about 40 MB): a fresh interpreter without Airflow
    (python -S, stdlib only) supervises instead. Ctrl-C stays blocked across the exec and is
    delivered once the new image has its handlers.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-S", os.path.abspath(__file__), "--supervise",
                              *(f"{name}={pid}" for pid, name in children.items())])


def main(argv: list[str]) -> int:
    stop_requested: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.append(signum))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})

    exit_code = 0
    if argv[:1] == ["--supervise"]:
        children = {int(pid): name for name, _, pid in (arg.partition("=") for arg in argv[1:])}
    else:
        children, exit_code = start_all(stop_requested)
        if not stop_requested:
            say(f"started {', '.join(COMPONENTS)}  (Ctrl-C stops them)")
            become_supervisor(children)
    groups = dict(children)     # pid = pgid of each component's group

    while not stop_requested:
        for name, status in reap(children):
            say(f"{name} exited ({status}): stopping the others")
            exit_code = 1
            stop_requested.append(0)
        time.sleep(0.2)

    say("stopping: one SIGINT to every component")
    for pgid in groups:
        signal_group(pgid, signal.SIGINT)
    started = time.monotonic()
    repeated = False
    while time.monotonic() - started < GRACE_S and any(alive(g) for g in groups):
        reap(children)
        if not repeated and time.monotonic() - started > GRACE_S / 2:
            # Airflow's handlers exit by sys.exit(), which is lost when the signal lands in a
            # finalizer ("Exception ignored in ... _releaseLock"): a second Ctrl-C, as a user would.
            repeated = True
            for pgid in groups:
                if alive(pgid):
                    say(f"{groups[pgid]} still running: SIGINT again")
                    signal_group(pgid, signal.SIGINT)
        time.sleep(0.1)
    left = [groups[g] for g in groups if alive(g)]
    if left:
        say(f"still running after {GRACE_S:g} s: {', '.join(left)}; killed")
        for pgid in groups:
            signal_group(pgid, signal.SIGKILL)
        while children and time.monotonic() - started < GRACE_S + 5:
            reap(children)
            time.sleep(0.1)
    say(f"stopped in {time.monotonic() - started:.1f} s")
    return exit_code or 128 + stop_requested[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
