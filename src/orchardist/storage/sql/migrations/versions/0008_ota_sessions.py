"""Over-the-air enrollment sessions (who signed in, which device they enrolled).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("challenge_sha256", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_ota_sessions"),
        sa.UniqueConstraint("challenge_sha256", name="uq_ota_sessions_challenge_sha256"),
    )
    op.create_index("ix_ota_sessions_device_id", "ota_sessions", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_ota_sessions_device_id", table_name="ota_sessions")
    op.drop_table("ota_sessions")
