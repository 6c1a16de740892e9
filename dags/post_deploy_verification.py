"""Every production deploy on Vercel verified within minutes (issue 19): an ERROR build alerted at
once; a READY one swept at once, then judged with Sentry after post_deploy.observe_for; one
verdict in Slack with the way back. Also by hand, with a deployment id."""

from airflow.sdk import Param

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.deploys import ObserveSentryOperator, VerifyEndpointsOperator
from maintenance.parse_settings import dag_defaults
from maintenance.triggers.vercel_deployments import deploy_schedule

# The deployments watcher's asset (in the triggerer); None without a vercel section: by hand only.
# Runs come with deploys, not on a period: no heartbeat pings or deadline (dag_settings' self-watch
# is for the scheduled DAGs), so the schedule is set after it.
settings = dag_settings("post_deploy_verification", schedule=None, tags=["deploy"])
settings["schedule"] = deploy_schedule(dag_defaults()["vercel_watch_interval_s"])
settings["max_active_runs"] = 8   # a deploy during another's observe window is swept at once, not queued

with MaintenanceDAG(**settings, params={
        "deployment_id": Param(None, type=["null", "string"],
                               description="Vercel deployment id or URL (empty: the newest production deployment)")}):
    VerifyEndpointsOperator(task_id="verify_endpoints") >> ObserveSentryOperator(task_id="observe_sentry")
