"""How PostgreSQL compresses large values (TOAST): see migration 0028."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def lz4_available(conn: Connection) -> bool:
    """Whether this is a PostgreSQL that can compress with LZ4 (optional in its build
    before 16; the setting that lists it exists from 14)."""
    if conn.dialect.name != "postgresql":
        return False
    query = sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    row = conn.execute(query).first()
    return row is not None and "lz4" in (row[0] or [])
