"""Footprint of `make run` (a program, not a test): memory when idle, one uptime run, one Ctrl-C.

    .venv/bin/python benchmarks/footprint.py            # waits for the first scheduled uptime_monitor run
    .venv/bin/python benchmarks/footprint.py --trigger  # triggers it through the REST API instead (quicker)

1. Starts `make run` (make -o .venv/.installed run: the same Makefile target and
   scripts/run.sh, without re-installing) in its own session, as a terminal would, on a free
   port, with its own temporary AIRFLOW_HOME and a config whose one endpoint is a local HTTP
   server in this process. Nothing is unpaused by hand.
2. Waits until the API server reports every component healthy, the DAG processor has
   written every DAG, no DAG run is queued or running, and the last run ended long enough ago
   for the executor to have stopped its idle workers (MAINTENANCE_IDLE_WORKER_S + 10 s); then
   sums the proportional set size (Pss in /proc/PID/smaps_rollup) over the whole process tree
   (the session and every descendant), five times 2 s apart, and keeps the median.
3. Waits for the next scheduled uptime_monitor run (at most 5 minutes; --trigger: a manual run
   through the REST API), which must succeed, probe the local endpoint, store an ok result and
   end before the next run is due (end_after_due_s < 300). The tree's peak PSS during the run
   is kept. (--idle-only skips this.)
4. Sends ONE SIGINT to the process group (what Ctrl-C does) and measures the time until no
   process of the tree is left (target: 15 s). Survivors are listed and then killed.

The last line is one JSON object: processes, pss_mb (idle), target_pss_mb, pss_peak_run_mb,
uptime_run {state, run_type, queued_to_end_s, end_after_due_s, on_time}, stop_s, stopped_by_one_sigint, and the
sizing in effect (parallelism, api_workers, parsing_processes). Absolute figures; the target is
pss_mb <= 600 with the run on time and stop_s <= 15.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_PSS_MB = 600
TARGET_STOP_S = 15.0
IDLE_WORKER_S = float(os.environ.get("MAINTENANCE_IDLE_WORKER_S", "60"))   # scripts/run.sh's executor
UPTIME_PERIOD_S = 300       # uptime_monitor runs every 5 minutes: a run must end before the next is due


class Skipped(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits += 1
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# ---- the process tree ------------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session id) of a live process, None when it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[3])


def tree(root: int) -> list[int]:
    """Live processes of the root's session, plus any descendant that left it."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            procs[int(entry)] = st
    members = {pid for pid, (_, sid) in procs.items() if sid == root}
    if root in procs:
        members.add(root)
    grew = True
    while grew:
        new = {pid for pid, (ppid, _) in procs.items() if ppid in members and pid not in members}
        members |= new
        grew = bool(new)
    return sorted(members)


def stop_make_run(make: "subprocess.Popen", grace_s: float = 60.0) -> tuple[float, list[int]]:
    """One Ctrl-C (SIGINT to `make run`'s process group); what is still alive after grace_s is
    killed. Returns (seconds until every process was gone or the grace ran out, pids killed)."""
    started = time.monotonic()
    os.killpg(make.pid, signal.SIGINT)
    while tree(make.pid) and time.monotonic() - started < grace_s:
        time.sleep(0.2)
    stop_s = round(time.monotonic() - started, 1)
    survivors = tree(make.pid)
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    make.wait(timeout=30)
    return stop_s, survivors


def rollup_kb(pid: int) -> dict[str, int]:
    """Pss and Private (the process's own pages: what one more of it costs) from smaps_rollup."""
    found = {"Pss": 0, "Private": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                found["Pss"] = int(value.split()[0])
            elif key in ("Private_Clean", "Private_Dirty"):
                found["Private"] += int(value.split()[0])
    except OSError:
        pass
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def measure(root: int) -> tuple[int, float, list[tuple[int, dict[str, int], str]]]:
    pids = tree(root)
    rows = [(pid, rollup_kb(pid), cmdline(pid)) for pid in pids]
    return len(pids), sum(kb["Pss"] for _, kb, _ in rows) / 1024, rows


# ---- Airflow, seen from outside -------------------------------------------------------------

def get_json(url: str, headers: dict | None = None, data: dict | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Content-Type": "application/json", **(headers or {})},
                                     data=json.dumps(data).encode() if data is not None else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def healthy(base: str) -> bool:
    try:
        health = get_json(f"{base}/api/v2/monitor/health")
    except (OSError, ValueError):
        return False
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(p) or {}).get("status") == "healthy" for p in parts)


def query(db: Path, sql: str, *args) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:      # table not there yet (migrating)
        return []
    finally:
        con.close()


def wait(what: str, condition, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trigger", action="store_true", help="trigger uptime_monitor instead of waiting for its schedule")
    parser.add_argument("--idle-only", action="store_true", help="measure idle and stop: no uptime_monitor run")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME (for its logs)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    home = Path(tempfile.mkdtemp(prefix="footprint-airflow-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    local_url = f"http://127.0.0.1:{endpoint.server_address[1]}/health"
    config = home / "maintenance.yaml"
    config.write_text(textwrap.dedent(f"""\
        site: {{name: footprint.local, url: "{local_url}"}}
        endpoints:
          - name: local
            url: "{local_url}"
            critical: true
            conditions: ["[STATUS] == 200", "[BODY].status == ok", "[RESPONSE_TIME] < 1500"]
        """))
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"),
        "PORT": str(port),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "MAINTENANCE_CONFIG": str(config),
        # the log servers' default ports are fixed (8793, 8794): another instance may hold them
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    })
    for name in ("AIRFLOW__CORE__PARALLELISM", "AIRFLOW__API__WORKERS", "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"):
        if name in os.environ:            # a sizing to compare: passed through
            env[name] = os.environ[name]
    db = home / "airflow" / "airflow.db"
    results_db = home / "airflow" / "maintenance_results.db"
    dag_ids = 10 if not (ROOT / "dags").exists() else len(list((ROOT / "dags").glob("*.py")))
    log_path = home / "make-run.log"
    log = open(log_path, "wb")
    t_start = time.monotonic()
    make = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            # as a terminal's job: SIGINT handled by default, even if ours is ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    report: dict = {}
    try:
        wait("every component healthy", lambda: healthy(base), 600, 2)
        report["healthy_after_s"] = round(time.monotonic() - t_start, 1)
        wait(f"{dag_ids} DAGs parsed", lambda: (query(db, "select count(*) from serialized_dag") or [(0,)])[0][0]
             >= dag_ids, 300, 2)
        paused = query(db, "select dag_id from dag where is_paused")
        report["paused_dags"] = sorted(d for (d,) in paused)
        busy = "select count(*) from dag_run where state in ('queued', 'running')"

        # idle: no run queued or running, before and after five samples (else sample again)
        for _ in range(30):
            wait("no DAG run in progress", lambda: query(db, busy) == [(0,)], 600, 2)
            # idle: also past the time after which the executor stops idle workers
            last_end = (query(db, "select max(end_date) from dag_run") or [(None,)])[0][0]
            if last_end:
                idle_s = (datetime.now(timezone.utc) - datetime.fromisoformat(last_end).replace(tzinfo=timezone.utc)).total_seconds()
                time.sleep(max(0.0, IDLE_WORKER_S + 10 - idle_s))
            time.sleep(5)
            before = query(db, "select count(*) from dag_run")
            samples = []
            for _ in range(5):
                samples.append(measure(make.pid))
                time.sleep(2)
            if query(db, busy) == [(0,)] and query(db, "select count(*) from dag_run") == before:
                break
        else:
            raise TimeoutError("never idle")
        # what the first start ran by itself (catchup off: each scheduled DAG's latest time)
        report["first_runs"] = {d: st for d, st in query(db, "select dag_id, state from dag_run order by id")}
        processes = statistics.median_low([n for n, _, _ in samples])
        pss = statistics.median([mb for _, mb, _ in samples])
        print(f"idle: {processes} processes, {pss:.0f} MB PSS")
        print("      PSS   private      pid  command")
        for pid, kb, cmd in sorted(samples[-1][2], key=lambda r: -r[1]["Pss"]):
            print(f"  {kb['Pss'] / 1024:7.1f} {kb['Private'] / 1024:7.1f} MB {pid:>7}  {cmd[:100]}")

        # one uptime_monitor run that starts after the idle measurement: scheduled (default) or triggered
        if args.idle_only:
            raise Skipped()
        last = query(db, "select coalesce(max(id), 0) from dag_run where dag_id = 'uptime_monitor'")[0][0]
        if args.trigger:
            users = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
            token = get_json(f"{base}/auth/token", data={"username": "admin", "password": users["admin"]})
            get_json(f"{base}/api/v2/dags/uptime_monitor/dagRuns", data={"logical_date": None},
                     headers={"Authorization": f"Bearer {token['access_token']}"})
        print("waiting for uptime_monitor's run" + ("" if args.trigger else " (scheduled every 5 minutes)"))
        peak = [0.0]

        def finished():
            peak[0] = max(peak[0], measure(make.pid)[1])
            rows = query(db, "select state, run_type, queued_at, end_date, run_after from dag_run "
                             "where dag_id = 'uptime_monitor' and id > ? order by id limit 1", last)
            return rows[0] if rows and rows[0][0] in ("success", "failed") else None

        state, run_type, queued_at, end_date, run_after = wait("uptime_monitor's run", finished, UPTIME_PERIOD_S + 300)
        parse = lambda s: datetime.fromisoformat(s).replace(tzinfo=timezone.utc)  # noqa: E731
        stored = query(results_db, "select status from check_results where check_name = 'local' "
                                   "and dag_id = 'uptime_monitor' order by id desc limit 1")
        run = {
            "state": state, "run_type": run_type,
            "queued_to_end_s": round((parse(end_date) - parse(queued_at)).total_seconds(), 1),
            # a scheduled run is due at run_after, a triggered one when queued
            "end_after_due_s": round((parse(end_date) - max(parse(run_after), parse(queued_at))).total_seconds(), 1),
            "endpoint_hits": Endpoint.hits,
            "stored": stored[0][0] if stored else None,
        }
        run["on_time"] = (state == "success" and run["end_after_due_s"] < UPTIME_PERIOD_S
                          and Endpoint.hits > 0 and run["stored"] == "ok")
        print(f"uptime_monitor: {run}; peak {peak[0]:.0f} MB PSS during the run")
    except Skipped:
        run = None
    except Exception as exc:  # still stop what was started, and say why
        report["error"] = f"{type(exc).__name__}: {exc}"
        print(f"ERROR {report['error']}; log: {log_path}", file=sys.stderr)
        processes = pss = None
        run = None

    # one Ctrl-C: SIGINT to the process group, as the terminal sends it
    before_stop = tree(make.pid)
    t_sigint = time.monotonic()
    os.killpg(make.pid, signal.SIGINT)
    stop_s = None
    while time.monotonic() - t_sigint < 60:
        if not tree(make.pid):
            stop_s = round(time.monotonic() - t_sigint, 1)
            break
        time.sleep(0.1)
    survivors = tree(make.pid)
    if survivors:
        print(f"after 60 s, {len(survivors)} of {len(before_stop)} processes still alive:", file=sys.stderr)
        for pid in survivors:
            print(f"  {pid:>7}  {cmdline(pid)[:120]}", file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    make.wait(timeout=30)
    log.close()
    endpoint.shutdown()
    print(f"stop: one SIGINT, {len(before_stop)} processes gone after {stop_s} s")
    if not args.keep_home and "error" not in report:
        subprocess.run(["rm", "-rf", str(home)], check=False)
    else:
        print(f"AIRFLOW_HOME and log kept in {home}")

    sizing = {name.split("__")[-1].lower(): env.get(name) or "default" for name in (
        "AIRFLOW__CORE__PARALLELISM", "AIRFLOW__API__WORKERS", "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES")}
    sizing.update(parse_run_sh_defaults())
    result = {
        "processes": processes, "pss_mb": round(pss, 1) if pss is not None else None,
        "target_pss_mb": TARGET_PSS_MB, "within_target": pss is not None and pss <= TARGET_PSS_MB,
        "pss_peak_run_mb": round(peak[0], 1) if run else None, "uptime_run": run,
        "stop_s": stop_s, "stopped_by_one_sigint": stop_s is not None and stop_s <= TARGET_STOP_S,
        "sizing": sizing, **report,
    }
    print(json.dumps(result))
    run_ok = args.idle_only or (run is not None and run["on_time"])
    return 0 if result["within_target"] and run_ok and result["stopped_by_one_sigint"] else 1


def parse_run_sh_defaults() -> dict[str, str]:
    """The sizing scripts/run.sh applies when the environment sets none (for the report)."""
    import re

    text = (ROOT / "scripts" / "run.sh").read_text()
    found = {}
    for name, key in (("AIRFLOW__CORE__PARALLELISM", "parallelism"), ("AIRFLOW__API__WORKERS", "workers"),
                      ("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "parsing_processes")):
        if key not in found or found[key] == "default":
            m = re.search(rf'{name}="\$\{{{name}:-(\w+)\}}"', text)
            if m and name not in os.environ:
                found[key] = m.group(1)
    return found


if __name__ == "__main__":
    sys.exit(main())
