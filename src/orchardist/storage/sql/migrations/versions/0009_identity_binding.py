"""Which device a certificate was issued for, and how an enrollment ended.

A one-time SCEP challenge minted for one UDID (over-the-air enrollment) binds the
certificate it yields to that UDID; a renewal carries the binding over. MDM refuses an
Authenticate for another device with such a certificate (mdm/binding.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scep_challenges") as batch:
        batch.add_column(sa.Column("device_id", sa.String(128), nullable=True))
    with op.batch_alter_table("scep_transactions") as batch:
        batch.add_column(sa.Column("device_id", sa.String(128), nullable=True))
    with op.batch_alter_table("issued_certificates") as batch:
        batch.add_column(sa.Column("device_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("renewal_of", sa.String(40), nullable=True))
    with op.batch_alter_table("enrollments") as batch:
        # checked_out (the device said so), retired (an admin), erased (EraseDevice done)
        batch.add_column(sa.Column("ended_by", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("ended_by")
    with op.batch_alter_table("issued_certificates") as batch:
        batch.drop_column("renewal_of")
        batch.drop_column("device_id")
    with op.batch_alter_table("scep_transactions") as batch:
        batch.drop_column("device_id")
    with op.batch_alter_table("scep_challenges") as batch:
        batch.drop_column("device_id")
