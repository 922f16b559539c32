"""Push jobs: one partial index for first pushes (attempts = 0) and one for re-pushes
(attempts > 0), each on due_at, in place of (due_at) and (attempts, due_at). A claim of
either kind ranges over its own index as before (orchardist.storage.sql.push_claims), and
each row version is in one index, not two: a fan-out to a million devices writes a million
index entries fewer, and so does every batch of push outcomes.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

FIRST_PUSH = sa.text("attempts = 0")
REPUSH = sa.text("attempts > 0")


def upgrade() -> None:
    op.drop_index("ix_push_jobs_due_at", table_name="push_jobs")
    op.drop_index("ix_push_jobs_attempts_due_at", table_name="push_jobs")
    for name, where in (
        ("ix_push_jobs_first_due", FIRST_PUSH),
        ("ix_push_jobs_repush_due", REPUSH),
    ):
        op.create_index(name, "push_jobs", ["due_at"], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_push_jobs_first_due", table_name="push_jobs")
    op.drop_index("ix_push_jobs_repush_due", table_name="push_jobs")
    op.create_index("ix_push_jobs_due_at", "push_jobs", ["due_at"])
    op.create_index("ix_push_jobs_attempts_due_at", "push_jobs", ["attempts", "due_at"])
