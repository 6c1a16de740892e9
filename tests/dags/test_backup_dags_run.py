"""dag.test() of manual_backup (deferrable wait, trigger run inline) and maintenance_monthly's
restore verification, against the local Atlas API, moto's S3 server and a local Slack receiver."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from atlas_server import AtlasServer, corrupt, snapshot
from servers import SlackReceiver

DAGS = Path(__file__).resolve().parents[2] / "dags"


def write_config(tmp_path, extra: str = "") -> str:
    path = tmp_path / "maintenance.yaml"
    path.write_text(textwrap.dedent("""
        site: {name: test.example, url: "https://test.example"}
        alerting: {failure_threshold: 1, success_threshold: 1, renotify_after: 4h}
        tasks: {retries: 2, retry_delay: 0s}
        results: {conn_id: test_results}
        contacts:
          atlas: {name: MongoDB Atlas Support, how: "https://support.mongodb.com"}
        atlas:
          conn_id: atlas_api
          poll_seconds: 0.05
          restore_wait_minutes: 1
          expected_collections: [app.users, app.orders]
    """) + textwrap.dedent(extra))
    return str(path)


@pytest.fixture
def env(airflow_db, tmp_path, monkeypatch):
    with AtlasServer() as atlas, SlackReceiver() as slack:
        monkeypatch.setenv("MAINTENANCE_CONFIG", write_config(tmp_path))
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        store_url = f"sqlite:///{tmp_path / 'results.db'}"
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": store_url}}))
        installed_long_ago(store_url)
        yield atlas, slack


def installed_long_ago(store_url: str) -> None:
    """One result from before last month: a monthly report of a period before the project's
    first result is skipped (nothing to report), and these tests read the report."""
    from datetime import datetime, timedelta, timezone

    from maintenance.results import CheckResult, ResultsStore

    ResultsStore(store_url).record([CheckResult(check="atlas.snapshot_freshness", group="backups", status="ok",
                                                summary="seed", time=datetime.now(timezone.utc) - timedelta(days=70))])


def load(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]


def states(run):
    return {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}


def test_manual_backup_completes_and_posts_the_snapshot_id(env):
    from airflow.sdk import DagRunState

    atlas, slack = env
    atlas.polls = 3
    run = load("manual_backup").test(run_conf={"reason": "before v2 migration", "retention_days": 3,
                                               "wait_minutes": 1})
    assert run.state == DagRunState.SUCCESS, states(run)
    assert atlas.created == [{"description": f"before v2 migration (Airflow manual_backup {run.run_id})",
                              "retentionInDays": 3}]
    snapshot_gets = [r for r in atlas.server.requests if r.path.endswith("/backup/snapshots/od1")]
    assert len(snapshot_gets) >= 3, "the trigger polled until completed"
    assert len(slack.messages) == 1, slack.messages
    text = json.dumps(slack.messages[0])
    assert "od1" in text and "completed" in text and "before v2 migration" in text
    assert "atlas-private-SECRET" not in text and "XXXXSECRETXXXX" not in text


def test_a_retried_take_snapshot_reuses_the_snapshot_its_crashed_try_started(env):
    """Try 1 crashes after Atlas created the snapshot (the answer is held back past the task's
    execution_timeout, as when a worker is lost mid-request); Airflow retries the crash, and try 2
    finds that snapshot instead of requesting a second one. The snapshot is complete by then, so
    Atlas would accept a second request (no 409 "already in progress" to stop it)."""
    from datetime import timedelta

    from airflow.sdk import DagRunState

    atlas, slack = env
    atlas.post_faults = [("after", "timeout")]
    atlas.fault_delay = 3.0
    atlas.initial_status = "completed"
    dag = load("manual_backup")
    dag.get_task("take_snapshot").execution_timeout = timedelta(seconds=1)
    run = dag.test(run_conf={"reason": "before v2 migration", "wait_minutes": 1})
    assert run.state == DagRunState.SUCCESS, states(run)
    assert states(run)["take_snapshot"] == ("success", 2)
    assert len(atlas.created) == 1 and [s["id"] for s in atlas.snapshots if s["snapshotType"] == "onDemand"] == ["od1"]
    assert "od1" in json.dumps(slack.messages)


def test_manual_backup_failed_snapshot_fails_with_a_clear_message(env):
    from airflow.sdk import DagRunState

    atlas, slack = env
    atlas.on_demand = "failed"
    run = load("manual_backup").test(run_conf={"reason": "risky deploy", "wait_minutes": 1})
    assert run.state == DagRunState.FAILED
    tries = states(run)
    assert tries["take_snapshot"][0] == "success"
    assert tries["wait_for_snapshot"][0] == "failed" and tries["wait_for_snapshot"][1] == 1   # not retried: paged
    assert tries["report_snapshot"][0] == "upstream_failed"
    assert len(slack.messages) == 1, slack.messages
    text = slack.messages[0]["text"]
    assert "atlas.manual_snapshot" in text and "od1 as failed" in text and "snapshot_failed" in text
    assert "MongoDB Atlas Support" in json.dumps(slack.messages[0]["blocks"])


def test_monthly_restore_of_a_corrupt_archive_fails(env, tmp_path, monkeypatch):
    from airflow.sdk import DagRunState

    atlas, slack = env
    atlas.snapshots = [snapshot("s-new", 5), snapshot("s-old", 29)]
    atlas.archive = corrupt(atlas.archive)
    atlas.restore_polls = 2
    run = load("maintenance_monthly").test()
    assert run.state == DagRunState.FAILED
    assert states(run)["verify_backups"][0] == "failed"
    # the report is still produced and announced; run_outcome keeps the run red
    assert states(run)["monthly_report"][0] == "success" and states(run)["run_outcome"][0] == "failed"
    jobs = list(atlas.jobs.values())
    assert jobs and all(j["snapshotId"] == "s-new" for j in jobs), "the newest completed snapshot is restored"
    # (the full system audit's report is another REPORT message of the same run)
    alerts = [m for m in slack.messages if "\nREPORT " not in m["text"]]
    reports = [m for m in slack.messages if "REPORT report.monthly" in m["text"]]
    assert len(alerts) == 1 and len(reports) == 1, slack.messages
    text = alerts[0]["text"]
    assert "atlas.restore_archive" in text and "corrupt" in text and "SIGNED-SECRET" not in json.dumps(slack.messages)
    assert "backups NOT verified" in reports[0]["text"]


def test_monthly_restore_of_a_good_archive_passes(env):
    from airflow.sdk import DagRunState

    from maintenance.results import ResultsStore

    atlas, slack = env
    run = load("maintenance_monthly").test()
    assert states(run)["verify_backups"][0] == "success", states(run)
    assert states(run)["run_outcome"][0] == "skipped", states(run)
    assert run.state == DagRunState.SUCCESS
    # no alert; only the announcements of the monthly report (and of the full system audit)
    assert all("\nREPORT " in m["text"] for m in slack.messages), slack.messages
    (report,) = [m["text"] for m in slack.messages if "REPORT report.monthly" in m["text"]]
    assert "backups verified" in report
    import os
    url = json.loads(os.environ["AIRFLOW_CONN_TEST_RESULTS"])["extra"]["sqlalchemy_url"]
    rows = {r["check_name"]: r for r in ResultsStore(url).history()}
    assert rows["atlas.restore_archive"]["status"] == "ok"
    assert "all 2 expected present" in rows["atlas.restore_archive"]["summary"]
