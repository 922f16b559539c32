"""Command results on PostgreSQL are compressed with LZ4 instead of pglz, PostgreSQL's
default for values too large to keep in the row. A device's InstalledApplicationList or
CertificateList answer runs to a megabyte: pglz cost its backend 4.8 ms of CPU per 1.2 MB
answer stored here, LZ4 1.7 ms (and ~100 KB stored instead of ~70 KB), CPU that large
reports took from the Idles' queries on a busy machine.

Only values stored from now on are compressed so; a PostgreSQL built without LZ4 (it is
optional before 16) keeps pglz. SQLite stores the bytes as they are: nothing to do there.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from orchardist.storage.sql.compression import lz4_available

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if lz4_available(op.get_bind()):
        op.execute("ALTER TABLE command_targets ALTER COLUMN result SET COMPRESSION lz4")


def downgrade() -> None:
    if lz4_available(op.get_bind()):  # else upgrade() changed nothing
        op.execute("ALTER TABLE command_targets ALTER COLUMN result SET COMPRESSION default")
