"""Inventory: device facts, security, restrictions, apps, certificates, profiles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=True),
        sa.Column("security", sa.JSON(), nullable=True),
        sa.Column("restrictions", sa.JSON(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_inventory"),
    )
    op.create_table(
        "inventory_apps",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("short_version", sa.String(64), nullable=True),
        sa.Column("bundle_size", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "identifier", name="pk_inventory_apps"),
    )
    op.create_index("ix_inventory_apps_identifier", "inventory_apps", ["identifier"])
    op.create_table(
        "inventory_certificates",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("common_name", sa.String(255), nullable=True),
        sa.Column("is_identity", sa.Boolean(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("not_after", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "position", name="pk_inventory_certificates"),
    )
    op.create_index("ix_inventory_certificates_not_after", "inventory_certificates", ["not_after"])
    op.create_table(
        "inventory_profiles",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("uuid", sa.String(64), nullable=True),
        sa.Column("is_managed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "identifier", name="pk_inventory_profiles"),
    )
    op.create_table(
        "inventory_provisioning_profiles",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "uuid", name="pk_inventory_provisioning_profiles"),
    )
    op.create_index(
        "ix_inventory_provisioning_profiles_expires_at",
        "inventory_provisioning_profiles",
        ["expires_at"],
    )


def downgrade() -> None:
    for index, table in (
        ("ix_inventory_provisioning_profiles_expires_at", "inventory_provisioning_profiles"),
        ("ix_inventory_certificates_not_after", "inventory_certificates"),
        ("ix_inventory_apps_identifier", "inventory_apps"),
    ):
        op.drop_index(index, table)
    for table in (
        "inventory_provisioning_profiles",
        "inventory_profiles",
        "inventory_certificates",
        "inventory_apps",
        "inventory",
    ):
        op.drop_table(table)
