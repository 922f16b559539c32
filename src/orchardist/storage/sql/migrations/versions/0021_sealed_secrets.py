"""Secrets at rest are sealed with the master key (orchardist.keys): beside each sealed
column, the id of the key that sealed it. NULL there with a value means a row written before
this revision, still plaintext: it is read as such, and sealed when a server opens the
database (`storage.sql.sealing.seal_plaintext`, which needs the key, so not here) or by
`orchardist keys rotate`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_COLUMNS = {
    "enrollments": ("unlock_token_key", "bootstrap_token_key"),
    "profile_versions": ("body_key",),
    "commands": ("body_key",),
}


def upgrade() -> None:
    for table_name, columns in _COLUMNS.items():
        with op.batch_alter_table(table_name) as table:
            for column in columns:
                table.add_column(sa.Column(column, sa.String(16), nullable=True))


def downgrade() -> None:
    for table_name, columns in _COLUMNS.items():
        with op.batch_alter_table(table_name) as table:
            for column in columns:
                table.drop_column(column)
