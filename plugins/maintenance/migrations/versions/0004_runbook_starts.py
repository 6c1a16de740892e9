"""Automatic starts of the runbook DAGs (issue 10): the circuit breaker's memory.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "runbook_starts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runbook", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("source_run_id", sa.String(250)),
        sa.Column("task_id", sa.String(250)),
    )
    op.create_index("ix_runbook_starts_started_at", "runbook_starts", ["started_at"])
    op.create_index("ix_runbook_starts_runbook", "runbook_starts", ["runbook"])


def downgrade() -> None:
    op.drop_index("ix_runbook_starts_runbook", table_name="runbook_starts")
    op.drop_index("ix_runbook_starts_started_at", table_name="runbook_starts")
    op.drop_table("runbook_starts")
