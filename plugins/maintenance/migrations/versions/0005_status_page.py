"""Reports and the status page (issue 12): indexes for per-check time ranges, failures and
check families; daily rollups (check_daily, check_daily_done); each check's latest state
(check_latest; a check without a row there is read from its history until its next result).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # Only what is missing (a database made by a pre-release build of this change has some).
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    indexes = {i["name"] for i in inspector.get_indexes("check_results")}
    for name, columns in (("ix_check_results_check_time", ["check_name", "checked_at"]),
                          ("ix_check_results_check_status_time", ["check_name", "status", "checked_at", "in_maintenance"]),
                          ("ix_check_results_group_time", ["check_group", "checked_at"])):
        if name not in indexes:
            op.create_index(name, "check_results", columns)
    if "check_daily" not in tables:
        op.create_table(
            "check_daily",
            sa.Column("check_name", sa.String(200), primary_key=True),
            sa.Column("day", sa.Date, primary_key=True),
            sa.Column("check_group", sa.String(100), nullable=False),
            sa.Column("critical", sa.Boolean, nullable=False),
            sa.Column("counted", sa.Integer, nullable=False),
            sa.Column("up", sa.Integer, nullable=False),
            sa.Column("warned", sa.Integer, nullable=False),
            sa.Column("down", sa.Integer, nullable=False),
            sa.Column("maintenance", sa.Integer, nullable=False),
            sa.Column("skipped", sa.Integer, nullable=False),
            sa.Column("p50_ms", sa.Float),
            sa.Column("p95_ms", sa.Float),
            sa.Column("max_ms", sa.Float),
            sa.Column("metrics", sa.JSON),
        )
    if "check_daily_done" not in tables:
        op.create_table(
            "check_daily_done",
            sa.Column("day", sa.Date, primary_key=True),
            sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "check_latest" not in tables:
        op.create_table(
            "check_latest",
            sa.Column("check_name", sa.String(200), primary_key=True),
            sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(10), nullable=False),
            sa.Column("summary", sa.Text, nullable=False),
            sa.Column("reason", sa.String(100)),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("check_group", sa.String(100), nullable=False),
            sa.Column("critical", sa.Boolean, nullable=False),
            sa.Column("in_maintenance", sa.Boolean, nullable=False),
            sa.Column("response_ms", sa.Float),
            sa.Column("state", sa.String(10)),
            sa.Column("state_since", sa.DateTime(timezone=True)),
        )


def downgrade() -> None:
    op.drop_table("check_latest")
    op.drop_table("check_daily_done")
    op.drop_table("check_daily")
    op.drop_index("ix_check_results_group_time", table_name="check_results")
    op.drop_index("ix_check_results_check_status_time", table_name="check_results")
    op.drop_index("ix_check_results_check_time", table_name="check_results")
