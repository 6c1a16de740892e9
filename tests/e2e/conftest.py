"""One started topology per module (startup costs ~30 s): fixtures with their teardown in finally."""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from e2e.fakes import Site, Slack
from e2e.topology import Topology
from figures import report
from servers import LocalServer


@pytest.fixture(scope="module")
def site():
    site = Site()
    with LocalServer(site) as server:
        site.url = server.url
        yield site


@pytest.fixture(scope="module")
def slack():
    with Slack() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def pings():
    with LocalServer(lambda r: (200, {"Content-Type": "text/plain"}, "OK")) as server:
        yield server


def write_config(path: Path, site_url: str, ui_url: str, late_after: str, extra: str = "") -> None:
    """The e2e config; `extra` (YAML, a test module's CONFIG_EXTRA) adds top-level sections."""
    path.write_text(textwrap.dedent(f"""
        site: {{name: e2e.example, url: "{site_url}"}}
        endpoints:
          - {{name: home, url: "{site_url}/", group: homepage, critical: true, timeout: 60s,
              conditions: ["[STATUS] == 200"]}}
          - {{name: api-health, url: "{site_url}/api/health", group: api, critical: true, timeout: 60s,
              conditions: ["[STATUS] == 200"]}}
        alerting: {{failure_threshold: 1, success_threshold: 1, renotify_after: 4h, ui_base_url: "{ui_url}"}}
        tasks: {{retries: 2, retry_delay: 2s}}
        results: {{conn_id: maintenance_db, retention_days: 30}}
        heartbeat:
          slugs: {{uptime_monitor: uptime, maintenance_daily: daily}}
          late_after: {late_after}
    """) + textwrap.dedent(extra))


@pytest.fixture(scope="module")
def topology(request, site, slack, pings):
    """Postgres DB + Redis broker + api-server, scheduler, dag-processor, triggerer, Celery worker.

    A test module may set CONFIG_EXTRA (YAML sections added to the config), EXTRA_ENV (more
    environment for every component) and UNPAUSE (the DAGs it runs; default below)."""
    home = Path(tempfile.mkdtemp(prefix="maint-e2e-"))
    topology = Topology(home)
    # A test module may set LATE_AFTER (the config's heartbeat.late_after) for its topology.
    late_after = getattr(request.module, "LATE_AFTER", "{maintenance_daily: 5s}")
    write_config(home / "maintenance.yaml", site.url, topology.base_url, late_after,
                 getattr(request.module, "CONFIG_EXTRA", ""))
    failed_before = request.session.testsfailed
    started = time.monotonic()
    broken = False
    try:
        api = topology.up({
            "MAINTENANCE_CONFIG": str(home / "maintenance.yaml"),
            "AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(),
            "AIRFLOW_CONN_HEARTBEAT": json.dumps({"conn_type": "http", "host": f"{pings.url}/ping/e2e-key"}),
            **getattr(request.module, "EXTRA_ENV", {}),
        })
        report(f"[e2e] topology up in {time.monotonic() - started:.1f}s "
              f"(db {topology.db_name}, redis db {topology.redis_db}, logs {topology.logs})")
        unpause = getattr(request.module, "UNPAUSE", ("uptime_monitor", "maintenance_daily", "airflow_db_cleanup"))
        api.wait_for_dags(set(unpause))
        for dag_id in unpause:
            api.unpause(dag_id)
    except BaseException:
        broken = True
        raise
    else:
        yield topology
    finally:
        failed = broken or request.session.testsfailed > failed_before
        if failed:
            print(topology.log_tail())
        topology.close()
        report(f"[e2e] topology torn down after {time.monotonic() - started:.1f}s"
              + (f"; logs kept in {topology.logs}" if failed else ""))
        if not failed:
            shutil.rmtree(home, ignore_errors=True)
