"""Commands by age: the console's commands page lists them newest first, ordered by
(created_at, command_uuid) and continued from the last one shown with a keyset range on
that pair (`recent_commands`, storage/sql/command_log.py). Without this index each page
sorted the whole commands table.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_commands_created_at", "commands", ["created_at", "command_uuid"])


def downgrade() -> None:
    op.drop_index("ix_commands_created_at", table_name="commands")
