"""artifact revisions: every content an artifact had, kept readable

Revision ID: 0005_i9hist
Revises: 0004_i10

Existing artifacts get a revision 1 that points at their current file (no copy is made here):
it stays readable until a new revision overwrites that file (engine.artifact_revisions keeps a
copy first when it writes one itself).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_i9hist"
down_revision = "0004_i10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifact_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("execution_revision", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("artifact_id", "number"),
    )
    with op.batch_alter_table("artifact_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifact_revisions_artifact_id"), ["artifact_id"], unique=False)
    op.execute(
        """
        INSERT INTO artifact_revisions
            (artifact_id, number, execution_revision, path, size, sha256, author, kind, created_at)
        SELECT a.id, 1, e.revision, a.path, a.size, a.sha256,
               CASE e.mode WHEN 'agent' THEN 'agent' WHEN 'script' THEN 'script' ELSE 'unknown' END,
               'produced', a.created_at
        FROM artifacts a JOIN checkpoint_executions e ON e.id = a.execution_id
        """
    )


def downgrade() -> None:
    op.drop_table("artifact_revisions")
