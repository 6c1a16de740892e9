"""Alert state per run and owner; outbox dead letters and uncertain sends; the Retry-After gate.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("alert_state") as batch:
        batch.add_column(sa.Column("owner", sa.String(500)))
        batch.add_column(sa.Column("last_failed_run_id", sa.String(250)))
    with op.batch_alter_table("alert_outbox") as batch:
        batch.add_column(sa.Column("uncertain", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True)))
    op.create_index("ix_alert_outbox_pending", "alert_outbox", ["channel", "delivered_at"])
    op.create_table(
        "delivery_gate",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text),
    )
