"""In-house apps and provisioning profiles: apps, their versions, catalog groups,
assignments and per-device state; provisioning profiles, their assignments and per-device
state; and an index answering "which devices list this provisioning profile".

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _apps()
    _provisioning()


def _apps() -> None:
    op.create_table(
        "apps",
        sa.Column("bundle_id", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("latest_version_id", sa.Integer(), nullable=False),
        sa.Column("icon_sha256", sa.String(64), nullable=True),
        sa.Column("description", sa.String(4000), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bundle_id", name="pk_apps"),
    )
    op.create_table(
        "app_catalog_groups",
        sa.Column("bundle_id", sa.String(255), nullable=False),
        sa.Column("group_name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("bundle_id", "group_name", name="pk_app_catalog_groups"),
    )
    op.create_index("ix_app_catalog_groups_group_name", "app_catalog_groups", ["group_name"])
    op.create_table(
        "app_versions",
        sa.Column("bundle_id", sa.String(255), nullable=False),
        sa.Column("version_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("short_version", sa.String(64), nullable=False),
        sa.Column("build", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("minimum_os", sa.String(32), nullable=True),
        sa.Column("device_family", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("icon_sha256", sa.String(64), nullable=True),
        sa.Column("provisioning_uuid", sa.String(64), nullable=True),
        sa.Column("provisioning_expires_at", UtcDateTime(), nullable=True),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bundle_id", "version_id", name="pk_app_versions"),
        sa.UniqueConstraint(
            "bundle_id", "short_version", "build", name="uq_app_versions_bundle_id"
        ),
    )
    op.create_index("ix_app_versions_sha256", "app_versions", ["sha256"])
    op.create_table(
        "app_assignments",
        sa.Column("bundle_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("bundle_id", "kind", "target", name="pk_app_assignments"),
    )
    op.create_table(
        "device_apps",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("bundle_id", sa.String(255), nullable=False),
        sa.Column("desired_version_id", sa.Integer(), nullable=True),
        sa.Column("installed_version_id", sa.Integer(), nullable=True),
        sa.Column("installed_version", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("command_uuid", sa.String(64), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "bundle_id", name="pk_device_apps"),
    )
    op.create_index("ix_device_apps_bundle_id", "device_apps", ["bundle_id", "state"])
    op.create_index("ix_device_apps_command_uuid", "device_apps", ["command_uuid"])
    op.create_index("ix_device_apps_state", "device_apps", ["state", "next_attempt_at"])
    op.create_index("ix_device_apps_next_attempt_at", "device_apps", ["next_attempt_at"])


def _provisioning() -> None:
    op.create_table(
        "provisioning_profiles",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("app_id", sa.String(255), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("provisions_all_devices", sa.Boolean(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("replaced_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name="pk_provisioning_profiles"),
    )
    op.create_index("ix_provisioning_profiles_app_id", "provisioning_profiles", ["app_id"])
    op.create_index("ix_provisioning_profiles_expires_at", "provisioning_profiles", ["expires_at"])
    op.create_table(
        "provisioning_assignments",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("uuid", "kind", "target", name="pk_provisioning_assignments"),
    )
    op.create_table(
        "device_provisioning",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("command_uuid", sa.String(64), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "uuid", name="pk_device_provisioning"),
    )
    op.create_index("ix_device_provisioning_uuid", "device_provisioning", ["uuid", "state"])
    op.create_index("ix_device_provisioning_command_uuid", "device_provisioning", ["command_uuid"])
    op.create_index(
        "ix_inventory_provisioning_profiles_uuid", "inventory_provisioning_profiles", ["uuid"]
    )


def downgrade() -> None:
    op.drop_index(
        "ix_inventory_provisioning_profiles_uuid", table_name="inventory_provisioning_profiles"
    )
    # Dropping a table drops its indexes.
    for table in (
        "device_provisioning",
        "provisioning_assignments",
        "provisioning_profiles",
        "device_apps",
        "app_assignments",
        "app_versions",
        "app_catalog_groups",
        "apps",
    ):
        op.drop_table(table)
