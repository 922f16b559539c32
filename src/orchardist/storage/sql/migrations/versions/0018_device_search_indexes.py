"""The device list's search by index on PostgreSQL: a name containing the text through a
trigram index (the pg_trgm extension), a serial, UDID or enrolling user's name starting
with it through a range of a lower-cased index (text_pattern_ops: a prefix range whatever
the database's collation). Without them a search reads every device.

pg_trgm ships with PostgreSQL and is a trusted extension: the owner of the database may
create it. Where it cannot be created (not installed, or no right to), the migration does
the rest, logs what to run, and search by name keeps working, without its index. SQLite
gets none of these: a LIKE on lower() cannot use an index there.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

log = structlog.get_logger("orchardist.storage")

PREFIX_INDEXES = {
    "ix_enrollments_serial_number_lower": ("enrollments", "serial_number"),
    "ix_enrollments_device_id_lower": ("enrollments", "device_id"),
    "ix_ota_sessions_user_lower": ("ota_sessions", "user"),
}
TRIGRAM_INDEX = "ix_enrollments_device_name_trigram"
TRIGRAM_SQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX {TRIGRAM_INDEX} ON enrollments USING gin (lower(device_name) gin_trgm_ops)",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, column) in PREFIX_INDEXES.items():
        op.create_index(name, table, [sa.text(f'lower("{column}") text_pattern_ops')])
    _create_trigram_index()


def _create_trigram_index() -> None:
    """In a savepoint: a refusal (pg_trgm missing, or not ours to create) leaves the rest
    of the migration standing."""
    conn = op.get_bind()
    try:
        with conn.begin_nested():
            for statement in TRIGRAM_SQL:
                conn.execute(sa.text(statement))
    except sa.exc.DBAPIError as error:
        log.warning(
            "device search by name is not indexed: pg_trgm could not be created, so a "
            "search reads every device. To index it, run these statements in this "
            "database as a superuser",
            error=str(error.orig).strip(),
            statements="; ".join(TRIGRAM_SQL),
        )


def downgrade() -> None:
    # The extension stays: other things in the database may use it.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
    for name, (table, _column) in PREFIX_INDEXES.items():
        op.drop_index(name, table_name=table)
