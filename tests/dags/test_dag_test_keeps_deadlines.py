"""`airflow dags test` / dag.test() of a scheduled DAG with the shipped config (deadlines on).

Airflow 3.3.2's dag.test() cannot finish a successful run of a DAG with a deadline;
MaintenanceDAG.test() runs without it. The scheduler's copy (the serialized DAG the DAG
processor writes) must keep the deadline.
"""

from __future__ import annotations

from pathlib import Path

from maintenance.config import PROJECT_ROOT

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_weekly_dag_test_succeeds_with_the_shipped_defaults_and_the_scheduler_keeps_the_deadline(
        airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.deadline import Deadline
    from airflow.models.deadline_alert import DeadlineAlert as DeadlineAlertModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.sdk import DagRunState
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    monkeypatch.setenv("MAINTENANCE_CONFIG", str(PROJECT_ROOT / "include" / "config" / "maintenance.yaml"))
    dag = DagBag(dag_folder=str(DAGS / "maintenance_weekly.py")).dags["maintenance_weekly"]
    assert dag.deadline, "the shipped config gives maintenance_weekly a deadline (heartbeat.late_after)"

    run = dag.test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    assert dag.deadline, "test() gives the deadline back"
    with create_session() as session:
        # what the scheduler reads: the DAG processor's serialized copy, with its deadline registered
        serialized = SerializedDagModel.get("maintenance_weekly", session=session)
        alerts = session.scalars(select(DeadlineAlertModel).where(
            DeadlineAlertModel.serialized_dag_id == serialized.id)).all()
        assert len(alerts) == 1 and len(serialized.dag.deadline) == 1
        assert "run_is_late" in str(alerts[0].callback_def)
        # and the test run itself got none
        assert session.scalar(select(func.count()).select_from(Deadline).where(
            Deadline.dagrun_id == run.id)) == 0
