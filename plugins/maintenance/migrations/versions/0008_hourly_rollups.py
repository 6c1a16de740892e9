"""The status page at the watcher's 30-second resolution (issue 16, item 3): the last day's
counts per check and UTC hour (check_hourly; check_hourly_done marks the hours rolled up), so
"today" and "last 24 h" count the finished hours from roll-ups and only the raw remainder.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "check_hourly",
        sa.Column("check_name", sa.String(200), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("counted", sa.Integer, nullable=False, default=0),
        sa.Column("up", sa.Integer, nullable=False, default=0),
        sa.Column("down", sa.Integer, nullable=False, default=0),
        sa.Column("maintenance", sa.Integer, nullable=False, default=0),
        sa.Column("skipped", sa.Integer, nullable=False, default=0),
    )
    op.create_table(
        "check_hourly_done",
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("check_hourly_done")
    op.drop_table("check_hourly")
