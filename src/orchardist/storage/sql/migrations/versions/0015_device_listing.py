"""Device listing at scale and compliance: the indexes each sort of the device list pages
along, a numerically sortable OS version, and each device's stored compliance verdict.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.os_versions import sort_key
from orchardist.storage.sql.types import UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SORT_INDEXES = {
    "ix_enrollments_device_name": "device_name",
    "ix_enrollments_serial_number": "serial_number",
    "ix_enrollments_os_version_key": "os_version_key",
    "ix_enrollments_last_seen_at": "last_seen_at",
    "ix_enrollments_enrolled_at": "enrolled_at",
}


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("os_version_key", sa.String(32), nullable=True))
    _fill_os_version_keys()
    for name, column in SORT_INDEXES.items():
        op.create_index(name, "enrollments", [column, "device_id"])
    op.create_index("ix_ota_sessions_user", "ota_sessions", ["user"])
    op.create_table(
        "device_compliance",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("rules", sa.String(16), nullable=False),
        sa.Column("evaluated_at", UtcDateTime(), nullable=False),
        sa.Column("recheck_at", UtcDateTime(), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_compliance"),
    )
    op.create_index("ix_device_compliance_status", "device_compliance", ["status", "device_id"])
    op.create_index("ix_device_compliance_recheck_at", "device_compliance", ["recheck_at"])


def _fill_os_version_keys() -> None:
    """Devices enrolled before this migration: their key from the version they reported,
    one UPDATE per distinct version (a fleet runs a few dozen)."""
    enrollments = sa.table("enrollments", sa.column("os_version"), sa.column("os_version_key"))
    conn = op.get_bind()
    versions = conn.execute(
        sa.select(enrollments.c.os_version).where(enrollments.c.os_version.is_not(None)).distinct()
    ).scalars()
    for version in list(versions):
        conn.execute(
            sa.update(enrollments)
            .where(enrollments.c.os_version == version)
            .values(os_version_key=sort_key(version))
        )


def downgrade() -> None:
    op.drop_index("ix_device_compliance_recheck_at", table_name="device_compliance")
    op.drop_index("ix_device_compliance_status", table_name="device_compliance")
    op.drop_table("device_compliance")
    op.drop_index("ix_ota_sessions_user", table_name="ota_sessions")
    for name in SORT_INDEXES:
        op.drop_index(name, table_name="enrollments")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("os_version_key")
