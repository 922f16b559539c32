"""Configuration profiles: versions, assignments, static groups, per-device state.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("identifier", name="pk_profiles"),
    )
    op.create_table(
        "profile_versions",
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("payload_types", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("identifier", "version", name="pk_profile_versions"),
    )
    op.create_table(
        "profile_assignments",
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("identifier", "kind", "target", name="pk_profile_assignments"),
    )
    op.create_table(
        "device_groups",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", "device_id", name="pk_device_groups"),
    )
    op.create_table(
        "device_profiles",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=True),
        sa.Column("installed_version", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("command_uuid", sa.String(64), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "identifier", name="pk_device_profiles"),
    )
    op.create_index("ix_device_profiles_identifier", "device_profiles", ["identifier"])
    op.create_index("ix_device_profiles_command_uuid", "device_profiles", ["command_uuid"])


def downgrade() -> None:
    op.drop_index("ix_device_profiles_command_uuid", table_name="device_profiles")
    op.drop_index("ix_device_profiles_identifier", table_name="device_profiles")
    for table in (
        "device_profiles",
        "device_groups",
        "profile_assignments",
        "profile_versions",
        "profiles",
    ):
        op.drop_table(table)
