"""Which certificate a one-time SCEP challenge was minted to renew (mdm/renewal.py): the
certificate it yields records it as its renewal_of, so MDM can tell an identity renewal
(the enrollment keeps its queue) from a device re-enrolled afresh for the same UDID (a new
enrollment, its queue cancelled). NULL for every other challenge, and for those already
issued.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scep_challenges") as batch:
        batch.add_column(sa.Column("renewal_of", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scep_challenges") as batch:
        batch.drop_column("renewal_of")
