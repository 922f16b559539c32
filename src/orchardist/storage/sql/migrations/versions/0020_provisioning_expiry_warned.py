"""Provisioning profiles remember the last expiry warning logged for them (30, 14, 7 days,
or 0 once expired), so that each warning is logged once — across restarts, and by one of
several `serve` workers (the one whose update claims it).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provisioning_profiles") as table:
        table.add_column(sa.Column("expiry_warned_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provisioning_profiles") as table:
        table.drop_column("expiry_warned_days")
