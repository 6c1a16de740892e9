"""The OSV advisory cache of the dependency scan (one row per advisory id).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "osv_vulns",
        sa.Column("vuln_id", sa.String(200), primary_key=True),
        sa.Column("modified", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )
