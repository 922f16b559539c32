"""When each DeviceInformation key was last reported: answers are merged, not replaced.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory") as batch:
        batch.add_column(sa.Column("facts_seen", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inventory") as batch:
        batch.drop_column("facts_seen")
