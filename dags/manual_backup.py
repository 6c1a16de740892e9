"""Triggered by hand before a major update: an on-demand Atlas snapshot, waited for, reported to Slack."""

from airflow.sdk import DAG, Param

from maintenance.operators.defaults import dag_settings
from maintenance.operators.placeholder import NotImplementedCheckOperator

with DAG(
    **dag_settings("manual_backup", schedule=None, tags=["backup", "manual"]),
    params={
        "reason": Param("before a major update", type="string", description="Shown in the snapshot description"),
        "retention_days": Param(7, type="integer", minimum=1, maximum=365),
        "wait_minutes": Param(60, type="integer", minimum=1, maximum=720),
    },
):
    (
        NotImplementedCheckOperator(task_id="take_snapshot", check="atlas.manual_snapshot", group="backups",
                                    planned_in="issue #4: on-demand snapshot")
        >> NotImplementedCheckOperator(task_id="wait_for_snapshot", check="atlas.manual_snapshot_wait",
                                       group="backups", planned_in="issue #4: deferrable wait")
        >> NotImplementedCheckOperator(task_id="report_snapshot", check="atlas.manual_snapshot_report",
                                       group="backups", planned_in="issue #4: snapshot id to Slack")
    )
