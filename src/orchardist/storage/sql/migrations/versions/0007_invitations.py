"""Enrollment invitations and how their delivery went.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("invitation_id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
        sa.Column("email_status", sa.String(500), nullable=True),
        sa.Column("sms_status", sa.String(500), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("invitation_id", name="pk_invitations"),
    )
    op.create_index("ix_invitations_created_at", "invitations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_invitations_created_at", table_name="invitations")
    op.drop_table("invitations")
