"""a run's finish hook: who waits for the run to end (e.g. a chat workflow step)

Revision ID: 0003_i12
Revises: 0002_i13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_i12"
down_revision = "0002_i13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finish_hook", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_column("finish_hook")
