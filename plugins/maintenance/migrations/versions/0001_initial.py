"""The schema before migrations existed: check results, alert state, outbox.

Creates only the tables that are missing, so a database made by the earlier create_all()
is adopted as it is.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "check_results" not in existing:
        op.create_table(
            "check_results",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("check_name", sa.String(200), nullable=False),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("check_group", sa.String(100), nullable=False),
            sa.Column("status", sa.String(10), nullable=False),
            sa.Column("summary", sa.Text, nullable=False),
            sa.Column("reason", sa.String(100)),
            sa.Column("metrics", sa.JSON, nullable=False),
            sa.Column("evidence", sa.JSON, nullable=False),
            sa.Column("runbook", sa.String(200)),
            sa.Column("provider", sa.String(100)),
            sa.Column("critical", sa.Boolean, nullable=False),
            sa.Column("in_maintenance", sa.Boolean, nullable=False),
            sa.Column("dag_id", sa.String(250)),
            sa.Column("run_id", sa.String(250)),
            sa.Column("task_id", sa.String(250)),
            sa.Column("try_number", sa.Integer),
        )
        op.create_index("ix_check_results_checked_at", "check_results", ["checked_at"])
        op.create_index("ix_check_results_check_name", "check_results", ["check_name"])
    if "alert_state" not in existing:
        op.create_table(
            "alert_state",
            sa.Column("check_name", sa.String(200), primary_key=True),
            sa.Column("consecutive_failures", sa.Integer, nullable=False),
            sa.Column("consecutive_successes", sa.Integer, nullable=False),
            sa.Column("alerting", sa.Boolean, nullable=False),
            sa.Column("failing_since", sa.DateTime(timezone=True)),
            sa.Column("last_alert_at", sa.DateTime(timezone=True)),
            sa.Column("last_outbox_id", sa.Integer),
            sa.Column("updated_at", sa.DateTime(timezone=True)),
        )
    if "alert_outbox" not in existing:
        op.create_table(
            "alert_outbox",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
            sa.Column("check_name", sa.String(200)),
            sa.Column("channel", sa.String(20), nullable=False),
            sa.Column("payload", sa.JSON, nullable=False),
            sa.Column("dag_id", sa.String(250)),
            sa.Column("run_id", sa.String(250)),
            sa.Column("task_id", sa.String(250)),
            sa.Column("claim_token", sa.String(40)),
            sa.Column("claimed_at", sa.DateTime(timezone=True)),
            sa.Column("delivered_at", sa.DateTime(timezone=True)),
            sa.Column("cancelled_at", sa.DateTime(timezone=True)),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("last_error", sa.Text),
        )
