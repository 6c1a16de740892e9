"""The orchestrator's own errors reach Sentry through Airflow's integration, configured as in
docker-compose.yaml and the Helm values: `[sentry] sentry_on` plus SENTRY_DSN in the environment.

A DAG runs under dag.test() in a fresh process (Airflow reads sentry_on when its task runner is
imported), with sentry-sdk sending to a local endpoint in Sentry's ingest shape
(POST /api/<project>/envelope/, X-Sentry-Auth, gzip envelopes). A crashing task arrives as one
event tagged with its DAG, task and operator; a failing check (a finding already sent to Slack)
does not; no secret (a connection password held in a frame local and quoted in a URL) is in what Sentry
receives.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from servers import LocalServer, json_reply

ROOT = Path(__file__).resolve().parents[2]
PROJECT, KEY = "42", "0123456789abcdef0123456789abcdef"

PROBE_DAG = '''
from airflow.sdk import DAG

from maintenance.operators.base import MaintenanceCheckOperator


class BrokenCheck(MaintenanceCheckOperator):
    def run_checks(self, config, context):
        from airflow.sdk import BaseHook

        secret = BaseHook.get_connection("probe_api").password   # a frame local: must not reach Sentry
        raise RuntimeError(f"GET https://api.example/v1/status?api_key={secret} crashed")


class FailingCheck(MaintenanceCheckOperator):
    def run_checks(self, config, context):
        from maintenance.results import CheckResult

        return [CheckResult(check="probe.site", status="fail", summary="the site is down")]


with DAG("sentry_probe", schedule=None, default_args={"retries": 0}):
    BrokenCheck(task_id="crashes")
    FailingCheck(task_id="finds_a_problem")
'''

DRIVER = '''
import json, sys
from airflow.dag_processing.dagbag import DagBag

run = DagBag(dag_folder=sys.argv[1]).dags["sentry_probe"].test()
print("STATES=" + json.dumps({ti.task_id: str(ti.state) for ti in run.get_task_instances()}))
'''


class SentryIngest:
    """Sentry's envelope endpoint: checks the project and key, unpacks (gzip) envelopes."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.raw: list[bytes] = []
        self.refused = 0

    def __call__(self, request):
        auth = request.headers.get("X-Sentry-Auth", "")
        if request.method != "POST" or request.path.split("?")[0] != f"/api/{PROJECT}/envelope/" \
                or f"sentry_key={KEY}" not in auth:
            self.refused += 1
            return json_reply({"detail": "bad project or key"}, 401 if "sentry_key" not in auth else 404)
        body = request.body
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.raw.append(body)
        lines = body.split(b"\n")
        header = json.loads(lines[0])
        items = lines[1:]
        for index in range(0, len(items) - 1, 2):
            item_header = json.loads(items[index]) if items[index] else {}
            if item_header.get("type") == "event":
                self.events.append(json.loads(items[index + 1]))
        return json_reply({"id": header.get("event_id")})


def test_a_crashing_task_reaches_sentry_and_a_failing_check_does_not(airflow_db, tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "sentry_probe.py").write_text(PROBE_DAG)
    (tmp_path / "driver.py").write_text(DRIVER)
    config = tmp_path / "maintenance.yaml"
    config.write_text(textwrap.dedent(f"""
        site: {{name: probe, url: "https://probe.example"}}
        results: {{conn_id: probe_results}}
    """))
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    sentry_on = compose["x-airflow-common"]["environment"]["AIRFLOW__SENTRY__SENTRY_ON"]   # as deployed
    ingest = SentryIngest()
    with LocalServer(ingest) as server:
        env = {**os.environ,
               "AIRFLOW__SENTRY__SENTRY_ON": sentry_on,
               "SENTRY_DSN": f"http://{KEY}@127.0.0.1:{server.port}/{PROJECT}",
               "SENTRY_ENVIRONMENT": "test",
               "MAINTENANCE_CONFIG": str(config),
               "AIRFLOW_CONN_PROBE_API": json.dumps({"conn_type": "http", "password": "SENTRYLEAK42-hunter2"}),
               "AIRFLOW_CONN_PROBE_RESULTS": json.dumps(
                   {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'r.db'}"}}),
               "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),   # dag.test serializes its bundle
               "PYTHONPATH": str(ROOT / "plugins")}
        env.pop("AIRFLOW_CONN_SLACK_ALERTS", None)
        done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "dags" / "sentry_probe.py")],
                              env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    states = json.loads(done.stdout.split("STATES=")[1].splitlines()[0])
    assert states == {"crashes": "failed", "finds_a_problem": "failed"}, states
    assert ingest.refused == 0
    (event,) = ingest.events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and "api_key=***" in exception["value"]
    assert event["tags"]["dag_id"] == "sentry_probe" and event["tags"]["task_id"] == "crashes"
    assert event["tags"]["operator"] == "BrokenCheck" and event["environment"] == "test"
    assert any(f["function"] == "run_checks" for f in exception["stacktrace"]["frames"])
    everything = b"".join(ingest.raw)
    assert b"SENTRYLEAK42" not in everything and b"hunter2" not in everything
    # (the failing check sent no event: the one event is the crash; in this one process a sibling
    # task's log lines may still ride along as breadcrumbs, which a worker's own process would not)
