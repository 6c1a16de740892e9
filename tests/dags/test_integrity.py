"""DAG integrity: every DAG imports, has the contract's id, schedule, tags, retries, callback."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from maintenance.notifications.slack import MaintenanceNotifier

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "uptime_monitor": "*/5 * * * *",
    "maintenance_daily": "0 3 * * *",
    "maintenance_weekly": "0 4 * * 1",
    "maintenance_monthly": "0 5 1 * *",
    "manual_backup": None,
    "runbook_database": None,
    "runbook_payments": None,
    "runbook_email": None,
    "runbook_file_upload": None,
    "airflow_db_cleanup": "30 1 * * 0",
    "post_deploy_verification": None,     # issue 19: the vercel_deployments asset (or by hand)
}
# issue 19: a deploy during another deploy's observe window is swept at once, not queued behind it
MAX_ACTIVE_RUNS = {"post_deploy_verification": 8}
SDKS = {"stripe", "boto3", "botocore", "pymongo", "sentry_sdk", "slack_sdk", "aiohttp", "requests", "pandas"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_the_dags_of_the_contract(dagbag):
    assert set(dagbag.dag_ids) == set(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_schedule_and_defaults(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    timetable = getattr(dag.timetable, "timetable", dag.timetable)   # AssetOrTimeSchedule: its cron
    schedule = getattr(timetable, "expression", None) or getattr(timetable, "_expression", None)
    assert schedule == EXPECTED[dag_id], f"{dag_id}: schedule {dag.timetable!r}"
    assert dag.tags and "maintenance" in dag.tags
    assert dag.catchup is False
    assert dag.max_active_runs == MAX_ACTIVE_RUNS.get(dag_id, 1)
    assert dag.doc_md and dag.doc_md.startswith("# "), f"{dag_id} has no runbook doc_md"
    assert (dag.default_args.get("retries") or 0) >= 2
    assert dag.default_args.get("retry_delay") is not None
    for task in dag.tasks:
        assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries}"
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert any(isinstance(c, MaintenanceNotifier) and c.report_crash for c in callbacks), \
            f"{dag_id}.{task.task_id} has no failure notifier"


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_no_provider_sdk_at_top_level(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in SDKS, f"{path.name} imports {name} at top level"


def test_dag_files_do_not_pull_sdks_at_parse_time():
    """Importing every DAG module must not import a provider SDK (the parse stays cheap)."""
    import subprocess
    import sys

    code = (
        "import sys, runpy, glob\n"
        f"sys.path.insert(0, {str(DAGS.parent / 'plugins')!r})\n"
        f"for f in sorted(glob.glob({str(DAGS / '*.py')!r})): runpy.run_path(f)\n"
        f"bad = sorted(m for m in {sorted(SDKS - {'requests'})!r} if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"parsing the DAGs imported: {out.stdout.strip()}"


def test_parsing_the_dags_loads_neither_the_config_model_nor_the_check_code():
    """The DAG processor parses each file in a fresh process: it pays for every import.

    A DAG file gets its config values from parse_settings' JSON, not by validating the YAML;
    operator modules import what they run with inside execute(). benchmarks/dag_parse.py
    measures the cost; this keeps the imports from creeping back.
    """
    import subprocess
    import sys

    code = (
        "import sys, runpy, glob\n"
        f"sys.path.insert(0, {str(DAGS.parent / 'plugins')!r})\n"
        "from maintenance.config import get_config; get_config()\n"   # writes the parse settings
        "for m in [m for m in sys.modules if m.startswith('maintenance')]: del sys.modules[m]\n"
        f"for f in sorted(glob.glob({str(DAGS / '*.py')!r})): runpy.run_path(f)\n"
        "heavy = ('maintenance.config', 'maintenance.results', 'maintenance.alerting', 'maintenance.checks',\n"
        "         'maintenance.hooks', 'maintenance.conditions', 'maintenance.reports')\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"parsing the DAGs imported: {out.stdout.strip()}"


def test_uptime_monitor_also_runs_on_the_watchers_asset(dagbag):
    """issue 16: the 5-minute cron OR the uptime watcher's events (a BaseEventTrigger in the triggerer)."""
    from airflow.triggers.base import BaseEventTrigger

    dag = dagbag.dags["uptime_monitor"]
    assets = list(getattr(getattr(dag.timetable, "asset_condition", None), "objects", []))
    assert [a.name for a in assets] == ["uptime_watcher"], dag.timetable
    (watcher,) = assets[0].watchers
    assert isinstance(watcher.trigger, BaseEventTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "maintenance.triggers.uptime_watch.UptimeWatchTrigger"
    assert kwargs == {"interval": 30.0, "groups": []}   # numbers and group names only
