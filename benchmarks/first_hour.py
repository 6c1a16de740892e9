"""A new user's first hour of `make run` (a program, not a test): what reaches Slack.

    .venv/bin/python benchmarks/first_hour.py                      # 10 min outage, 37 min in all
    .venv/bin/python benchmarks/first_hour.py --fix-after 600 --total 2220 --screenshot docs/screenshots/status-page-first-hour.png

1. A local site in this process: `/healthy` answers 200 {"status": "ok"}; `/dead` drops the
   connection without answering until the fix, then answers like `/healthy`.
   A local Slack-compatible incoming webhook records every message with its arrival time.
2. Starts `make run` as benchmarks/footprint.py does (its own session, a free port, a fresh
   AIRFLOW_HOME), with a config naming both endpoints (critical) and no heartbeat section,
   and the webhook as the `slack_alerts` connection from the environment. Nothing is
   triggered or unpaused by hand.
3. After --fix-after seconds the dead endpoint comes back; the run goes on until --total
   seconds (the issue speaks of an hour; the default is shorter to fit a working session).
4. Screenshots the status page (`/maintenance-status/`, logged in with the generated admin
   password) in headless Chromium, then stops everything with one SIGINT (Ctrl-C).

Prints every Slack message (seconds since `make run` started, then its plain text), and one
last JSON line: {messages, failing, recovered, other, first_failing_s, recovered_s, ...}.
Expected: exactly one FAILING for `dead` and one RECOVERED for it, nothing else (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from footprint import free_port, get_json, healthy, stop_make_run, wait  # noqa: E402
from servers import LocalServer, Request, Reply, SlackReceiver  # noqa: E402


class TimedSlack(SlackReceiver):
    """SlackReceiver that also keeps when each message arrived (monotonic seconds)."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.times: list[float] = []

    def __call__(self, request: Request) -> Reply:
        reply = super().__call__(request)
        if reply[0] == 200:
            self.times.append(round(time.monotonic() - self.t0, 1))
            print(f"[{self.times[-1]:7.1f} s] SLACK: {self.messages[-1].get('text', '')!r}", flush=True)
        return reply


class Site:
    """`/dead` drops every connection (a crashed app behind a live port) until `fixed`."""

    fixed = False

    def __call__(self, request: Request) -> Reply:
        if request.path.startswith("/dead") and not self.fixed:
            raise ConnectionAbortedError
        return 200, {"Content-Type": "application/json"}, '{"status": "ok"}'


def classify(text: str, dead: str) -> str:
    """'failing' / 'recovered' for a message about the dead endpoint alone; 'other' otherwise."""
    lines = [line for line in text.splitlines()[1:] if line.strip()]     # line 0: the title
    if len(lines) == 1 and lines[0].startswith(f"FAILING {dead}:"):
        return "failing"
    if len(lines) == 1 and lines[0].startswith(f"RECOVERED {dead}:"):
        return "recovered"
    return "other"


def screenshot(base: str, password: str, path: Path) -> str:
    from browser import Browser, chromium

    if chromium() is None:
        return "chromium not installed"
    token = get_json(f"{base}/auth/token", data={"username": "admin", "password": password})["access_token"]
    with Browser(width=1280, height=900) as browser:
        browser.set_cookie("_token", token, base)
        browser.open(f"{base}/maintenance-status/")
        browser.wait_for("document.readyState === 'complete' && document.body.innerText.includes('dead')")
        browser.screenshot(path, full_page=True)
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fix-after", type=float, default=600, help="seconds until the dead endpoint comes back")
    parser.add_argument("--total", type=float, default=2220, help="seconds of `make run` in all")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "test-artifacts" / "status-page-first-hour.png")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME (for its logs)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    t0 = time.monotonic()
    slack = TimedSlack(t0).__enter__()
    site = Site()
    site_server = LocalServer(site).__enter__()

    home = Path(tempfile.mkdtemp(prefix="first-hour-airflow-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = home / "maintenance.yaml"
    conditions = '["[STATUS] == 200", "[BODY].status == ok"]'
    config.write_text(textwrap.dedent(f"""\
        site: {{name: first-hour.local, url: "{site_server.url}/"}}
        endpoints:
          - {{name: healthy, url: "{site_server.url}/healthy", critical: true, conditions: {conditions}}}
          - {{name: dead, url: "{site_server.url}/dead", critical: true, conditions: {conditions}}}
        """))
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MAINTENANCE"))}
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"),
        "PORT": str(port),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "MAINTENANCE_CONFIG": str(config),
        "AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    })
    log_path = home / "make-run.log"
    log = open(log_path, "wb")
    t0 = slack.t0 = time.monotonic()
    make = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    report: dict = {"airflow_home": str(home), "fix_after_s": args.fix_after, "total_s": args.total}
    try:
        wait("every component healthy", lambda: healthy(base), 600, 2)
        report["healthy_after_s"] = round(time.monotonic() - t0, 1)
        print(f"[{report['healthy_after_s']:7.1f} s] every component healthy at {base}")
        time.sleep(max(0.0, args.fix_after - (time.monotonic() - t0)))
        site.fixed = True
        report["fixed_at_s"] = round(time.monotonic() - t0, 1)
        print(f"[{report['fixed_at_s']:7.1f} s] FIX: the dead endpoint answers again")
        time.sleep(max(0.0, args.total - (time.monotonic() - t0)))
        try:
            password = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
            report["screenshot"] = screenshot(base, password, args.screenshot)
        except Exception as exc:  # a screenshot that failed is said, the Slack record still counts
            report["screenshot"] = f"failed: {type(exc).__name__}: {exc}"
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        print(f"ERROR {report['error']}; log: {log_path}", file=sys.stderr)

    report["stop_s"], survivors = stop_make_run(make)
    for pid in survivors:
        print(f"still alive after 60 s, killed: {pid}", file=sys.stderr)
    log.close()
    site_server.__exit__(None, None, None)
    slack.__exit__(None, None, None)

    print("\nEvery Slack message (seconds since `make run`):")
    kinds = []
    for at, message in zip(slack.times, slack.messages):
        text = message.get("text", "")
        kinds.append((classify(text, "dead"), at))
        print(f"--- {at:.1f} s ({kinds[-1][0]})\n{text}")
    first = lambda kind: next((at for k, at in kinds if k == kind), None)  # noqa: E731
    result = {
        "messages": len(kinds),
        "failing": sum(1 for k, _ in kinds if k == "failing"),
        "recovered": sum(1 for k, _ in kinds if k == "recovered"),
        "other": sum(1 for k, _ in kinds if k == "other"),
        "first_failing_s": first("failing"),
        "recovered_s": first("recovered"),
        **report,
    }
    print(json.dumps(result))
    passed = (result["failing"], result["recovered"], result["other"]) == (1, 1, 0) and "error" not in report
    if passed and not args.keep_home:
        subprocess.run(["rm", "-rf", str(home)], check=False)
    else:
        print(f"AIRFLOW_HOME and make-run.log kept in {home}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
