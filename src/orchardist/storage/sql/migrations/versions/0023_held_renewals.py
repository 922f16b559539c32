"""Which certificate a SCEP transaction's one-time challenge was minted to renew (0022):
with manual approval a request waits as a transaction, and the certificate issued on
approval must still record its renewal_of, or MDM takes the renewed device for a new
enrollment and cancels its queue. NULL for every other transaction, and for those from
before (a request held across the upgrade is approved as a plain enrollment).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scep_transactions") as batch:
        batch.add_column(sa.Column("renewal_of", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scep_transactions") as batch:
        batch.drop_column("renewal_of")
