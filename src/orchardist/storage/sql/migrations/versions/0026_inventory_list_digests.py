"""Inventory: a digest of each list's rows as last written (`list_digests`, list table →
SHA-256), so a device answering the same InstalledApplicationList again (the usual answer)
rewrites none of its rows (orchardist.storage.sql.inventory).

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory") as batch:
        batch.add_column(sa.Column("list_digests", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inventory") as batch:
        batch.drop_column("list_digests")
