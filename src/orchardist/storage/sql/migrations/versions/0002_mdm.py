"""MDM: enrollments, commands and their per-device targets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollments",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=True),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("model_name", sa.String(128), nullable=True),
        sa.Column("product_name", sa.String(64), nullable=True),
        sa.Column("os_version", sa.String(32), nullable=True),
        sa.Column("build_version", sa.String(32), nullable=True),
        sa.Column("device_name", sa.String(255), nullable=True),
        sa.Column("imei", sa.String(64), nullable=True),
        sa.Column("meid", sa.String(64), nullable=True),
        sa.Column("identity_sha256", sa.String(64), nullable=False),
        sa.Column("enrolled", sa.Boolean(), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=True),
        sa.Column("push_magic", sa.String(255), nullable=True),
        sa.Column("unlock_token", sa.LargeBinary(), nullable=True),
        sa.Column("bootstrap_token", sa.LargeBinary(), nullable=True),
        sa.Column("authenticated_at", UtcDateTime(), nullable=False),
        sa.Column("enrolled_at", UtcDateTime(), nullable=True),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        sa.Column("checked_out_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_enrollments"),
    )
    op.create_index("ix_enrollments_identity_sha256", "enrollments", ["identity_sha256"])
    op.create_table(
        "commands",
        sa.Column("command_uuid", sa.String(64), nullable=False),
        sa.Column("request_type", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("command_uuid", name="pk_commands"),
    )
    op.create_table(
        "command_targets",
        sa.Column("command_uuid", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("answered_at", UtcDateTime(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("command_uuid", "device_id", name="pk_command_targets"),
    )
    op.create_index(
        "ix_command_targets_device_id",
        "command_targets",
        ["device_id", "status", "priority", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_command_targets_device_id", "command_targets")
    op.drop_table("command_targets")
    op.drop_table("commands")
    op.drop_index("ix_enrollments_identity_sha256", "enrollments")
    op.drop_table("enrollments")
