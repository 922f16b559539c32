"""Named leases (orchardist.jobs.leases): of several processes on one database (`serve
--workers N`, several hosts), the one holding a job's lease runs its pass — profile
repair, compliance, provisioning, identity renewal, the app roll-out, the clean-up — and
`done_at` says when a pass last finished, so a periodic one runs once per period for the
whole server rather than once per process.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.String(255), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("done_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
