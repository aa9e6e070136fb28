"""request keys: chat requests already acted on (replays and retries have no effect)

Revision ID: 0002_i8cards
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_i8cards"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_keys",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_request_keys_seen_at", "request_keys", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_request_keys_seen_at", table_name="request_keys")
    op.drop_table("request_keys")
