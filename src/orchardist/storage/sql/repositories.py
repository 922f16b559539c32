"""SqlStorage: every storage role (see `orchardist.storage`) on one SQLAlchemy engine.

Each method is one short transaction; rows never leave this module, only the frozen
records of `orchardist.storage`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from orchardist.storage import (
    ApiToken,
    CertificateStatus,
    ChallengeOutcome,
    IssuedCertificate,
    ScepTransaction,
    ScepTransactionStatus,
)
from orchardist.storage.sql.engine import create_engine
from orchardist.storage.sql.tables import (
    SERIAL_HEX_DIGITS,
    api_tokens,
    issued_certificates,
    scep_challenges,
    scep_transactions,
)


def serial_key(serial: int) -> str:
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"


class SqlStorage:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    # -- CertificateStore

    async def add_certificate(self, cert: IssuedCertificate) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(issued_certificates.insert().values(_certificate_row(cert)))
        except IntegrityError as exc:
            raise ValueError(f"certificate {cert.serial:x} is recorded already") from exc

    async def get_certificate(self, serial: int) -> IssuedCertificate | None:
        query = select(issued_certificates).where(
            issued_certificates.c.serial == serial_key(serial)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _certificate(row)

    async def revoke_certificate(self, serial: int, at: datetime) -> bool:
        table = issued_certificates
        async with self.engine.begin() as conn:
            await conn.execute(
                update(table)
                .where(and_(table.c.serial == serial_key(serial), table.c.revoked_at.is_(None)))
                .values(status=CertificateStatus.REVOKED.value, revoked_at=at)
            )
            found = await conn.execute(
                select(table.c.serial).where(table.c.serial == serial_key(serial))
            )
            return found.first() is not None

    async def certificates_expiring(self, before: datetime) -> list[IssuedCertificate]:
        table = issued_certificates
        query = (
            select(table)
            .where(
                and_(table.c.status == CertificateStatus.VALID.value, table.c.not_after < before)
            )
            .order_by(table.c.not_after)
        )
        async with self.engine.connect() as conn:
            return [_certificate(row) for row in await conn.execute(query)]

    # -- ChallengeStore

    async def add_challenge(self, challenge_sha256: str, expires_at: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                scep_challenges.insert().values(
                    challenge_sha256=challenge_sha256, expires_at=expires_at
                )
            )

    async def consume_challenge(self, challenge_sha256: str, now: datetime) -> ChallengeOutcome:
        table = scep_challenges
        # One conditional UPDATE: the database decides which of two racing requests wins.
        claim = (
            update(table)
            .where(
                and_(
                    table.c.challenge_sha256 == challenge_sha256,
                    table.c.used_at.is_(None),
                    table.c.expires_at > now,
                )
            )
            .values(used_at=now)
        )
        async with self.engine.begin() as conn:
            if (await conn.execute(claim)).rowcount == 1:
                return ChallengeOutcome.CONSUMED
            query = select(table.c.used_at).where(table.c.challenge_sha256 == challenge_sha256)
            row = (await conn.execute(query)).first()
        if row is None:
            return ChallengeOutcome.UNKNOWN
        return ChallengeOutcome.ALREADY_USED if row.used_at else ChallengeOutcome.EXPIRED

    # -- ScepTransactionStore

    async def save_transaction(self, tx: ScepTransaction) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_upsert_transaction(conn.dialect.name, tx))

    async def record_issued(self, cert: IssuedCertificate, tx: ScepTransaction) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(issued_certificates.insert().values(_certificate_row(cert)))
                await conn.execute(_upsert_transaction(conn.dialect.name, tx))
        except IntegrityError as exc:
            raise ValueError(f"certificate {cert.serial:x} is recorded already") from exc

    async def get_transaction(self, transaction_id: str) -> ScepTransaction | None:
        query = select(scep_transactions).where(
            scep_transactions.c.transaction_id == transaction_id
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ScepTransaction(
            transaction_id=row.transaction_id,
            status=ScepTransactionStatus(row.status),
            csr_der=row.csr_der,
            created_at=row.created_at,
            certificate_serial=(
                None if row.certificate_serial is None else int(row.certificate_serial, 16)
            ),
        )

    # -- ApiTokenStore

    async def add_api_token(self, token: ApiToken) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    api_tokens.insert().values(
                        name=token.name,
                        token_sha256=token.token_sha256,
                        role=token.role,
                        created_at=token.created_at,
                    )
                )
        except IntegrityError as exc:
            raise ValueError(f"a token named {token.name!r} exists already") from exc

    async def find_api_token(self, token_sha256: str) -> ApiToken | None:
        query = select(api_tokens).where(api_tokens.c.token_sha256 == token_sha256)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ApiToken(row.name, row.token_sha256, row.role, row.created_at)


async def open_storage(url: str) -> SqlStorage:
    """Storage on the database at `url`; it is not migrated here (see `migrate.upgrade`)."""
    return SqlStorage(create_engine(url))


def _certificate(row: Row[Any]) -> IssuedCertificate:
    return IssuedCertificate(
        serial=int(row.serial, 16),
        subject=row.subject,
        not_before=row.not_before,
        not_after=row.not_after,
        sha256=row.sha256,
        der=row.der,
        status=CertificateStatus(row.status),
        revoked_at=row.revoked_at,
    )


def _certificate_row(cert: IssuedCertificate) -> dict[str, Any]:
    return {
        "serial": serial_key(cert.serial),
        "subject": cert.subject,
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "sha256": cert.sha256,
        "der": cert.der,
        "status": cert.status.value,
        "revoked_at": cert.revoked_at,
    }


def _upsert_transaction(dialect: str, tx: ScepTransaction) -> Any:
    """INSERT … ON CONFLICT DO UPDATE: both backends have it, under dialect-specific names."""
    values = {
        "transaction_id": tx.transaction_id,
        "status": tx.status.value,
        "csr_der": tx.csr_der,
        "created_at": tx.created_at,
        "certificate_serial": (
            None if tx.certificate_serial is None else serial_key(tx.certificate_serial)
        ),
    }
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(scep_transactions)
    changed = {k: v for k, v in values.items() if k != "transaction_id"}
    return insert.values(values).on_conflict_do_update(
        index_elements=["transaction_id"], set_=changed
    )
