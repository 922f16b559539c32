"""A device's groups: its console page names them (`groups_of`), and the primary key
(name, device_id) cannot answer "which groups is this device in" without reading every
membership.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_device_groups_device_id", "device_groups", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_device_groups_device_id", table_name="device_groups")
