"""Triggered by hand before a major update: an on-demand Atlas snapshot, waited for, reported to Slack."""

from airflow.sdk import Param

from maintenance.operators.backups import ReportSnapshotOperator, TakeSnapshotOperator, WaitForSnapshotOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG

with MaintenanceDAG(
    **dag_settings("manual_backup", schedule=None, tags=["backup", "manual"]),
    params={
        "reason": Param("before a major update", type="string", description="Shown in the snapshot description"),
        "retention_days": Param(7, type="integer", minimum=1, maximum=365),
        "wait_minutes": Param(60, type="integer", minimum=1, maximum=720),
    },
):
    (
        TakeSnapshotOperator(task_id="take_snapshot", reason="{{ params.reason }}",
                             retention_days="{{ params.retention_days }}")
        >> WaitForSnapshotOperator(task_id="wait_for_snapshot", wait_minutes="{{ params.wait_minutes }}")
        >> ReportSnapshotOperator(task_id="report_snapshot", reason="{{ params.reason }}")
    )
