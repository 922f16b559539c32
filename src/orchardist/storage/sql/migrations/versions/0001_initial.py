"""Initial schema: issued certificates, SCEP challenges and transactions, API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchardist.storage.sql.types import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_certificates",
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("not_after", UtcDateTime(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("serial", name="pk_issued_certificates"),
        sa.UniqueConstraint("sha256", name="uq_issued_certificates_sha256"),
    )
    op.create_index("ix_issued_certificates_not_after", "issued_certificates", ["not_after"])
    op.create_table(
        "scep_challenges",
        sa.Column("challenge_sha256", sa.String(64), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("challenge_sha256", name="pk_scep_challenges"),
    )
    op.create_table(
        "scep_transactions",
        sa.Column("transaction_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("csr_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("certificate_serial", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("transaction_id", name="pk_scep_transactions"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_api_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("scep_transactions")
    op.drop_table("scep_challenges")
    op.drop_index("ix_issued_certificates_not_after", "issued_certificates")
    op.drop_table("issued_certificates")
