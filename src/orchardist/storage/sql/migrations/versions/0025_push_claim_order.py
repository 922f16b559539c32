"""Push jobs: an index on (attempts, due_at), so a claim takes first pushes (attempts 0)
oldest due first without sorting the table (orchardist.storage.sql.push_claims); re-pushes
keep using ix_push_jobs_due_at.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_push_jobs_attempts_due_at", "push_jobs", ["attempts", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_push_jobs_attempts_due_at", table_name="push_jobs")
