"""The Retry-After gate remembers since when Slack has been gated (issue 18, item 2): the
gate is capped and re-probed, and the next delivered message says how long it was closed.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("delivery_gate") as batch:
        batch.add_column(sa.Column("since", sa.DateTime(timezone=True)))
