"""rollbacks that keep everything: plans, kinds, per-file archive records

Revision ID: 0002_i13
Revises: 0002_i8roles
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_i13"
down_revision = "0002_i8roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollback_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="checkpoint")
        )
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="applied")
        )
        batch_op.add_column(sa.Column("pipeline_slug", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("to_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("actor_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("plan_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("file_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("byte_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("execution_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("restores_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("restored_by_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_rollback_events_slug", ["pipeline_slug"], unique=False)
    with op.batch_alter_table("archived_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_path", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("archived_path", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("checksum", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archived_items", schema=None) as batch_op:
        for name in ("size", "checksum", "archived_path", "original_path"):
            batch_op.drop_column(name)
    with op.batch_alter_table("rollback_events", schema=None) as batch_op:
        batch_op.drop_index("ix_rollback_events_slug")
        for name in (
            "restored_by_id", "restores_id", "updated_at", "execution_count", "byte_count", "file_count",
            "plan_json", "actor_name", "to_version", "pipeline_slug", "status", "kind",
        ):  # fmt: skip
            batch_op.drop_column(name)
