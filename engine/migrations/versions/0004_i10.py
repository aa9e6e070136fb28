"""inbox: every acknowledged interaction is a row, handled from that row; its effect, once

Revision ID: 0004_i10
Revises: 0002_i9

The inbox's dedup key takes over from request_keys (one row per acknowledged request).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_i10"
down_revision = "0002_i9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_request_keys_seen_at", table_name="request_keys")
    op.drop_table("request_keys")
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=100), nullable=False),
        sa.Column("actor_name", sa.String(length=120), nullable=False),
        sa.Column("actor_groups", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("thread", sa.String(length=100), nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("answer_by", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    op.create_index("ix_inbox_pending", "inbox", ["handled_at", "id"], unique=False)
    op.create_table(
        "inbox_effects",
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dedup_key"),
    )
    op.create_index("ix_inbox_effects_applied_at", "inbox_effects", ["applied_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbox_effects_applied_at", table_name="inbox_effects")
    op.drop_table("inbox_effects")
    op.drop_index("ix_inbox_pending", table_name="inbox")
    op.drop_table("inbox")
    op.create_table(
        "request_keys",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_request_keys_seen_at", "request_keys", ["seen_at"], unique=False)
