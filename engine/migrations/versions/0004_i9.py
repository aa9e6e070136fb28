"""timers (deadlines, reminders) and per-decision approvers

Revision ID: 0002_i9
Revises: 0002_i11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_i9"
down_revision = "0002_i11"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["checkpoint_executions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["pipeline_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.create_index("ix_timers_open_due", ["state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_timers_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_timers_execution_id"), ["execution_id"], unique=False)
    op.create_table(
        "extra_approvers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("added_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["checkpoint_executions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("extra_approvers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_extra_approvers_execution_id"), ["execution_id"], unique=False)


def downgrade() -> None:
    op.drop_table("extra_approvers")
    op.drop_table("timers")
