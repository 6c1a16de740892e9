"""Time to alert under `make run` with the uptime watcher (issue 16; a program, not a test).

    .venv/bin/python benchmarks/time_to_alert.py            # about 17 minutes, at most 20
    .venv/bin/python benchmarks/time_to_alert.py --seed 7   # another draw of the outage moments

1. Starts `make run` (make -o .venv/.installed run, as benchmarks/footprint.py does) in its own
   session on a free port, with a temporary AIRFLOW_HOME and a config whose six endpoints are
   paths of a local site in this process, Slack a local incoming-webhook receiver
   (tests/servers.py SlackReceiver), watch interval 30 s, failure threshold 2, success threshold 1.
   Waits until every component is healthy, the watcher has stored a sweep and the first runs of
   the DAGs are over (at most 3 minutes).
2. Outages: five endpoints each go down (HTTP 503) once at a random moment within a 6-minute
   window and come back 2 minutes later; a sixth, `flapping`, fails every other request, i.e.
   every other sweep whichever path swept it (a probe is never retried inside a sweep), from the
   window's start until every outage has recovered. For each outage: seconds from the site's
   first failing answer to the Slack message saying `FAILING <endpoint>`, and from its first good
   answer to `RECOVERED <endpoint>`; and the FAILING pages of the flapping endpoint.
3. Five steady minutes (everything answers 200): uptime_monitor's task instances of the runs due
   in that window (dag_run.run_after; any 300 s window holds exactly one 5-minute cron tick) and
   the bytes written under AIRFLOW_HOME/logs/dag_id=* (the task logs), per hour; against what
   the 5-minute cron alone creates (uptime_monitor's tasks x 12 an hour).
4. One Ctrl-C (SIGINT to the process group) stops `make run`.

Last line JSON: outages, detect_p50_s, detect_max_s, recover_max_s, flapping_pages,
steady_task_instances_per_h, steady_log_kb_per_h, cron_task_instances_per_h. Targets:
detect_max_s <= 90, recover_max_s <= 90, flapping_pages 0,
steady_task_instances_per_h <= cron_task_instances_per_h (exit status 1 when one is missed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]

from footprint import free_port, healthy, query, stop_make_run, wait  # noqa: E402 - the same `make run` plumbing
from servers import LocalServer, Request, SlackReceiver  # noqa: E402

WATCH_INTERVAL_S = 30
OUTAGES = 5
WINDOW_S = 360          # each outage starts at a random moment within this window...
DOWN_S = 120            # ...and lasts this long
STEADY_S = 300
CRON_PERIOD_S = 300     # uptime_monitor's cron: */5
RECOVERY_WAIT_S = 180   # after the last outage ends, at most this long for its RECOVERED
TARGET_DETECT_S = TARGET_RECOVER_S = 90
UPTIME = "uptime_monitor"


@dataclass
class Site:
    """The monitored site: /outage-N down between its two moments, /flapping failing every other
    request while `flapping`; every answer noted (time, path, status)."""

    outages: dict[str, tuple[float, float]] = field(default_factory=dict)   # path -> (down at, up at)
    flapping: bool = False
    flap_requests: int = 0
    answers: list[tuple[float, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> tuple[int, dict[str, str], str]:
        now = time.time()
        path = request.path
        with self.lock:
            if path == "/flapping":
                self.flap_requests += 1
                down = self.flapping and self.flap_requests % 2 == 0
            else:
                down_at, up_at = self.outages.get(path, (float("inf"), float("inf")))
                down = down_at <= now < up_at
            status = 503 if down else 200
            self.answers.append((now, path, status))
        return status, {"Content-Type": "text/plain"}, "down for the benchmark" if down else "ok"

    def first(self, path: str, after: float, failing: bool) -> float | None:
        with self.lock:
            return next((t for t, p, s in self.answers if p == path and t >= after and (s >= 500) == failing), None)


@dataclass
class Slack(SlackReceiver):
    arrived: list[float] = field(default_factory=list)

    def __call__(self, request: Request):
        reply = super().__call__(request)
        if reply[0] == 200:
            self.arrived.append(time.time())
        return reply

    def first(self, verb: str, check: str, after: float) -> float | None:
        """Arrival of the first message after `after` whose text says `<verb> <check>:`."""
        pattern = re.compile(rf"(?<!STILL ){verb} {re.escape(check)}:")
        for at, message in zip(self.arrived, self.messages):
            if at >= after and pattern.search(message.get("text", "")):
                return at
        return None

    def count(self, verb: str, check: str) -> int:
        pattern = re.compile(rf"(?m)^(?<!STILL ){verb} {re.escape(check)}:")
        return sum(len(pattern.findall(m.get("text", ""))) for m in self.messages)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def quiet_resets(server: LocalServer) -> None:
    """A client closing its keep-alive connection (reset by peer) is no error worth a traceback."""
    default = server.httpd.handle_error

    def handle_error(request, address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            default(request, address)

    server.httpd.handle_error = handle_error


def task_log_bytes(logs: Path) -> dict[str, int]:
    """Bytes of task logs per DAG (AIRFLOW_HOME/logs/dag_id=<dag>/...)."""
    return {d.name.removeprefix("dag_id="): sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
            for d in logs.glob("dag_id=*")}


def percentile_50(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="seed of the outage moments (default: random)")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME (its logs)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    draw = random.Random(seed)
    t_begin = time.monotonic()

    site = Site()
    site_server = LocalServer(site).__enter__()
    slack = Slack().__enter__()
    quiet_resets(site_server)
    quiet_resets(slack.server)
    names = [f"outage-{n}" for n in range(1, OUTAGES + 1)] + ["flapping"]
    home = Path(tempfile.mkdtemp(prefix="time-to-alert-"))
    airflow_home = home / "airflow"
    config = home / "maintenance.yaml"
    endpoints = "\n".join(f'  - {{name: {n}, url: "{site_server.url}/{n}", group: other, critical: true, '
                          f'conditions: ["[STATUS] == 200"]}}' for n in names)
    config.write_text(f'site: {{name: bench.local, url: "{site_server.url}/outage-1"}}\n'
                      f"endpoints:\n{endpoints}\n" + textwrap.dedent(f"""\
        uptime: {{watch_interval: {WATCH_INTERVAL_S}s}}
        alerting: {{failure_threshold: 2, success_threshold: 1}}
        """))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(airflow_home), "PORT": str(port),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "MAINTENANCE_CONFIG": str(config),
        "AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    })
    db, results_db = airflow_home / "airflow.db", airflow_home / "maintenance_results.db"
    log_path = home / "make-run.log"
    log = open(log_path, "wb")  # noqa: SIM115 - make's output until the end
    make = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    outages: list[dict] = []
    steady: dict = {}
    error = None
    busy = "select count(*) from dag_run where state in ('queued', 'running')"
    try:
        def up() -> bool:
            if make.poll() is not None:
                raise RuntimeError(f"make run exited with {make.returncode}: {log_path.read_text()[-800:]}")
            return healthy(base)

        wait("every component healthy", up, 600, 2)
        print(f"healthy after {time.monotonic() - t_begin:.0f} s")
        swept = "select count(*) from check_results where run_id like 'watcher\\_\\_%' escape '\\'"
        wait("the watcher's first stored sweep", lambda: (query(results_db, swept) or [(0,)])[0][0] > 0, 300, 2)
        try:   # the first start runs each scheduled DAG's latest interval: let those end first
            wait("the first runs to end", lambda: query(db, busy) == [(0,)], 180, 2)
        except TimeoutError:
            print("runs still going after 3 minutes: starting anyway")

        # -- outages and flapping -------------------------------------------------------------
        t0 = time.time()
        print(f"outage window opens after {time.monotonic() - t_begin:.0f} s (seed {seed})")
        with site.lock:
            for name in names[:OUTAGES]:
                down_at = t0 + draw.uniform(0, WINDOW_S)
                site.outages[f"/{name}"] = (down_at, down_at + DOWN_S)
            site.flapping = True
        last_up = max(up for _, up in site.outages.values())

        def all_recovered() -> bool:
            return all(slack.first("RECOVERED", n, site.outages[f"/{n}"][1]) for n in names[:OUTAGES])

        time.sleep(max(0.0, last_up - time.time()))
        try:
            wait("every RECOVERED", all_recovered, RECOVERY_WAIT_S, 1)
        except TimeoutError as exc:
            print(str(exc))
        with site.lock:
            site.flapping = False
        for name in names[:OUTAGES]:
            down_at, up_at = site.outages[f"/{name}"]
            first_fail = site.first(f"/{name}", down_at, failing=True)
            first_good = site.first(f"/{name}", up_at, failing=False)
            paged = slack.first("FAILING", name, first_fail) if first_fail else None
            recovered = slack.first("RECOVERED", name, first_good) if first_good else None
            outages.append({
                "endpoint": name, "down_at_s": round(down_at - t0, 1),
                "detect_s": round(paged - first_fail, 1) if paged and first_fail else None,
                "recover_s": round(recovered - first_good, 1) if recovered and first_good else None,
                "pages": slack.count("FAILING", name), "recoveries": slack.count("RECOVERED", name)})
            print(f"  {outages[-1]}")
        runs = query(db, "select run_type, count(*) from dag_run where dag_id = ? group by run_type", UPTIME)
        print(f"uptime_monitor runs so far by type: {dict(runs)}; requests to /flapping: {site.flap_requests}")

        # -- steady minutes ---------------------------------------------------------------------
        wait("uptime_monitor idle", lambda: query(db, busy + " and dag_id = ?", UPTIME) == [(0,)], 120, 1)
        logs = airflow_home / "logs"
        t_steady = datetime.now(timezone.utc)
        bytes_before = task_log_bytes(logs)
        messages_before = len(slack.messages)
        print(f"{STEADY_S} steady seconds from {t_steady:%H:%M:%S} UTC")
        time.sleep(STEADY_S)
        t_end = datetime.now(timezone.utc)
        wait("the window's runs to end", lambda: query(db, busy + " and dag_id = ?", UPTIME) == [(0,)], 180, 1)
        bytes_after = task_log_bytes(logs)
        written = {dag: n - bytes_before.get(dag, 0) for dag, n in bytes_after.items() if n > bytes_before.get(dag, 0)}
        bytes_written = sum(written.values())
        rows = query(db, "select r.run_after, r.run_type, count(t.task_id) from dag_run r left join task_instance t "
                         "on t.dag_id = r.dag_id and t.run_id = r.run_id where r.dag_id = ? group by r.id", UPTIME)
        in_window = [(kind, n) for after, kind, n in rows if t_steady <= parse_time(after) < t_end]
        scheduled = [n for _, kind, n in rows if kind == "scheduled"]
        per_h = 3600 / (t_end - t_steady).total_seconds()
        steady = {
            "runs": [kind for kind, _ in in_window],
            "task_instances_per_h": round(sum(n for _, n in in_window) * per_h, 1),
            "log_kb_per_h": round(bytes_written / 1024 * per_h, 1),
            "cron_task_instances_per_h": max(scheduled) * 3600 // CRON_PERIOD_S if scheduled else None,
            "slack_messages": len(slack.messages) - messages_before, "log_bytes_by_dag": written,
        }
        print(f"steady: {steady}")
        for message in slack.messages[messages_before:]:    # what spoke up while nothing changed
            print("  slack during the steady minutes: " + " | ".join(message.get("text", "").splitlines()[:3])[:300])
    except Exception as exc:  # noqa: BLE001 - still stop what was started, and say why
        error = f"{type(exc).__name__}: {exc}"
        print(f"ERROR {error}; log: {log_path}", file=sys.stderr)

    stop_make_run(make)      # one Ctrl-C
    log.close()
    slack.__exit__(None, None, None)
    site_server.__exit__(None, None, None)
    if args.keep_home or error:
        print(f"AIRFLOW_HOME and log kept in {home}")
    else:
        subprocess.run(["rm", "-rf", str(home)], check=False)

    detects = [o["detect_s"] for o in outages if o["detect_s"] is not None]
    recovers = [o["recover_s"] for o in outages if o["recover_s"] is not None]
    complete = bool(outages) and len(detects) == len(recovers) == len(outages)
    result = {
        "outages": len(outages),
        "detect_p50_s": percentile_50(detects),
        "detect_max_s": max(detects) if complete else None,      # an outage never paged: no max
        "recover_max_s": max(recovers) if complete else None,
        "flapping_pages": slack.count("FAILING", "flapping"),
        "steady_task_instances_per_h": steady.get("task_instances_per_h"),
        "steady_log_kb_per_h": steady.get("log_kb_per_h"),
        "cron_task_instances_per_h": steady.get("cron_task_instances_per_h"),
        "seed": seed, "total_s": round(time.monotonic() - t_begin), **({"error": error} if error else {}),
    }
    met = (complete and result["detect_max_s"] <= TARGET_DETECT_S and result["recover_max_s"] <= TARGET_RECOVER_S
           and result["flapping_pages"] == 0 and result["cron_task_instances_per_h"] is not None
           and result["steady_task_instances_per_h"] <= result["cron_task_instances_per_h"])
    print(json.dumps(result))
    return 0 if met and not error else 1


if __name__ == "__main__":
    sys.exit(main())
