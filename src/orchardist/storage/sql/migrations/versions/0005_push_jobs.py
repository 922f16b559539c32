"""Push jobs (the pusher's durable table) and push state on enrollments.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("pushed_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("token_invalid_at", UtcDateTime(), nullable=True))
    op.create_table(
        "push_jobs",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_push_jobs"),
    )
    op.create_index("ix_push_jobs_due_at", "push_jobs", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_push_jobs_due_at", table_name="push_jobs")
    op.drop_table("push_jobs")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("token_invalid_at")
        batch.drop_column("pushed_at")
