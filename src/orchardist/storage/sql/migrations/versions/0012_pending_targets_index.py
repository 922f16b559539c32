"""Command targets by status: `/metrics` counts the pending ones at every scrape.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_command_targets_status", "command_targets", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_command_targets_status", table_name="command_targets")
