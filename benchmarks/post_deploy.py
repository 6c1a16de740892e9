"""Post-deployment verification under `make run` (issue 19; a program, not a test).

    .venv/bin/python benchmarks/post_deploy.py              # observe window 60 s, 5 deploys
    .venv/bin/python benchmarks/post_deploy.py --observe 60 --keep-home

Starts `make run` (the Makefile target and scripts/run.sh, its own AIRFLOW_HOME, a free port) with
the stand-ins of the tests in this process: Vercel (tests/vitals_server.py), Sentry
(tests/deploy_fixtures.py), Slack's webhook and the site. The config has a vercel section
(watch_interval 10 s) and post_deploy.observe_for = --observe. Once the deployments watcher has
polled Vercel (the real triggerer running VercelDeploymentsTrigger), five production deployments
turn READY one after the other, each after the previous verdict:
    healthy, endpoint regression (/checkout answers 500), healthy, new Sentry issue, healthy.
For each, the time from READY (the deployment appearing READY in Vercel's list) to its verdict in
Slack. The last line is JSON: deploys, verdicts_right, endpoint_regression_s, verdict_max_s,
observe_s. Targets: verdicts_right == deploys, endpoint_regression_s <= 120, verdict_max_s <=
observe_s + 60.
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
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "plugins"), str(ROOT / "benchmarks")]

from footprint import free_port, healthy, stop_make_run, wait  # noqa: E402 - the same process helpers

from deploy_fixtures import SentryServer, sentry_issue  # noqa: E402
from servers import LocalServer, SlackReceiver  # noqa: E402
from vitals_server import VercelServer, deployment  # noqa: E402

PLAN = [("healthy", None), ("regressed", "endpoint"), ("healthy", None), ("regressed", "sentry"), ("healthy", None)]


class Site:
    def __init__(self):
        self.broken: set[str] = set()

    def __call__(self, request):
        path = request.path.split("?")[0]
        return (500, {}, "error") if path in self.broken else (200, {"Content-Type": "text/html"}, "<h1>ok</h1>")


def verdict_text(slack: SlackReceiver, uid: str) -> str | None:
    for message in list(slack.messages):
        if f"deploy {uid} " in message.get("text", "") and "DEPLOY deploy.verdict" in message.get("text", ""):
            return message["text"]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--observe", type=int, default=60, help="post_deploy.observe_for in seconds")
    parser.add_argument("--keep-home", action="store_true")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    home = Path(tempfile.mkdtemp(prefix="post-deploy-airflow-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    site_app = Site()
    site, vercel, sentry, slack = LocalServer(site_app), VercelServer(page_size=20), SentryServer(), SlackReceiver()
    for server in (site, vercel, sentry, slack):
        server.__enter__()
    config = home / "maintenance.yaml"
    config.write_text(textwrap.dedent(f"""\
        site: {{name: bench.local, url: "{site.url}"}}
        endpoints:
          - {{name: home, url: "{site.url}/", group: homepage, critical: true, conditions: ["[STATUS] == 200"]}}
          - {{name: checkout, url: "{site.url}/checkout", group: payments, critical: true,
              conditions: ["[STATUS] == 200"]}}
        vercel: {{conn_id: vercel_api, watch_interval: 10s}}
        sentry: {{conn_id: sentry_api}}
        post_deploy: {{observe_for: {args.observe}s, recheck_after: 5s}}
        """))
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"), "PORT": str(port), "MAINTENANCE_CONFIG": str(config),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_CONN_VERCEL_API": vercel.connection_json(project_id="prj_1"),
        "AIRFLOW_CONN_SENTRY_API": sentry.connection_json(),
        "AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(),
    })
    log_path = home / "make-run.log"
    log = open(log_path, "wb")
    make = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "run"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    vercel.add(deployment("dpl_base", int((time.time() - 3600) * 1000)))
    rows = []
    error = None
    try:
        wait("every component healthy", lambda: healthy(base), 600, 2)
        wait("the deployments watcher's first poll", lambda: any("target" in q for q in vercel.queries), 600, 2)
        time.sleep(2)
        for n, (expected, how) in enumerate(PLAN, 1):
            uid = f"dpl_{n}"
            sha = f"{n:02d}" + "ab" * 19
            site_app.broken = {"/checkout"} if how == "endpoint" else set()
            if how == "sentry":
                sentry.issues_by_release[sha] = [sentry_issue(100 + n, sha)]
            ready_at = time.monotonic()
            vercel.add(deployment(uid, int(time.time() * 1000), sha=sha))
            wait(f"the verdict of {uid}", lambda: verdict_text(slack, uid) is not None, args.observe + 600, 0.5)
            seconds = round(time.monotonic() - ready_at, 1)
            text = verdict_text(slack, uid)
            got = "regressed" if "REGRESSED" in text else "healthy" if ": healthy" in text else "?"
            rows.append({"uid": uid, "expected": expected, "how": how, "verdict": got, "seconds": seconds})
            print(f"{uid}: expected {expected}{f' ({how})' if how else ''}, verdict {got} after {seconds} s")
            if how == "endpoint":
                print("Slack text of the regressed verdict:\n" + text)
        site_app.broken = set()
    except Exception as exc:  # noqa: BLE001 - still stop what was started, and say why
        error = f"{type(exc).__name__}: {exc}"
        print(f"ERROR {error}; log: {log_path}", file=sys.stderr)
    stop_make_run(make)
    log.close()
    for server in (site, vercel, sentry, slack):
        server.__exit__(None, None, None)
    if not args.keep_home and error is None:
        subprocess.run(["rm", "-rf", str(home)], check=False)
    endpoint = [r["seconds"] for r in rows if r["how"] == "endpoint"]
    result = {"deploys": len(rows), "verdicts_right": sum(r["verdict"] == r["expected"] for r in rows),
              "endpoint_regression_s": endpoint[0] if endpoint else None,
              "verdict_max_s": max((r["seconds"] for r in rows), default=None), "observe_s": args.observe,
              **({"error": error} if error else {})}
    print(json.dumps(result))
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
