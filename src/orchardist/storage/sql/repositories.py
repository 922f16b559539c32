"""SqlStorage: every storage role (see `orchardist.storage`) on one database.

Each method is one short transaction written as a plain function over a `Connection` (see
`database.py` for why); rows never leave this module, only the frozen records of
`orchardist.storage`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, and_, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from orchardist.keys.master import MasterKeys
from orchardist.storage import (
    CertificateStatus,
    ChallengeOutcome,
    ChallengeUse,
    Invitation,
    IssuedCertificate,
    OtaSession,
    ScepTransaction,
    ScepTransactionStatus,
)
from orchardist.storage.sql import scep_enrolment
from orchardist.storage.sql.accounts import SqlAccountStorage
from orchardist.storage.sql.apps import SqlAppStorage
from orchardist.storage.sql.audit import SqlAuditStorage
from orchardist.storage.sql.command_log import SqlCommandLog
from orchardist.storage.sql.compliance import SqlComplianceStorage
from orchardist.storage.sql.dashboard import SqlDashboardStorage
from orchardist.storage.sql.database import Database, open_database
from orchardist.storage.sql.device_apps import SqlDeviceAppStorage
from orchardist.storage.sql.health import database_problem
from orchardist.storage.sql.inventory import SqlInventoryStorage
from orchardist.storage.sql.leases import SqlLeaseStorage
from orchardist.storage.sql.listing import SqlDeviceListing
from orchardist.storage.sql.mdm import SqlMdmStorage
from orchardist.storage.sql.profile_work import SqlProfileWorkStorage
from orchardist.storage.sql.profiles import SqlProfileStorage
from orchardist.storage.sql.provisioning import SqlProvisioningStorage
from orchardist.storage.sql.push import SqlPushStorage
from orchardist.storage.sql.stats import SqlStatsStorage
from orchardist.storage.sql.tables import (
    SERIAL_HEX_DIGITS,
    enrollment_tokens,
    invitations,
    issued_certificates,
    ota_sessions,
    scep_challenges,
    scep_transactions,
)
from orchardist.storage.sql.webhooks import SqlWebhookStorage

_certs = issued_certificates
_challenges = scep_challenges
_transactions = scep_transactions


def serial_key(serial: int) -> str:
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"


class SqlStorage(
    SqlAccountStorage,
    SqlMdmStorage,
    SqlPushStorage,
    SqlProfileStorage,
    SqlProfileWorkStorage,
    SqlInventoryStorage,
    SqlStatsStorage,
    SqlWebhookStorage,
    SqlComplianceStorage,
    SqlDeviceListing,
    SqlAuditStorage,
    SqlDashboardStorage,
    SqlCommandLog,
    SqlAppStorage,
    SqlDeviceAppStorage,
    SqlProvisioningStorage,
    SqlLeaseStorage,
):
    def __init__(self, database: Database, keys: MasterKeys | None = None) -> None:
        self.database = database
        # Without the data dir's key (tests, tools that read no secret): a key of this
        # object's own, so nothing is ever stored in the clear.
        self.keys = keys or MasterKeys.generate()

    async def close(self) -> None:
        await self.database.close()

    async def database_problem(self) -> str | None:
        return await database_problem(self.database)

    # -- CertificateStore

    async def add_certificate(self, cert: IssuedCertificate) -> None:
        await self._insert_certificate(cert, lambda conn: None)

    async def get_certificate(self, serial: int) -> IssuedCertificate | None:
        query = select(_certs).where(_certs.c.serial == serial_key(serial))
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _certificate(row)

    async def add_invitation(self, invitation: Invitation) -> None:
        row = dataclasses.asdict(invitation)
        await self.database.write(lambda conn: conn.execute(insert(invitations), row))

    async def list_invitations(self, limit: int = 100) -> list[Invitation]:
        query = select(invitations).order_by(invitations.c.created_at.desc()).limit(limit)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [Invitation(**row._asdict()) for row in rows]

    async def save_ota_session(self, session: OtaSession) -> None:
        row = {**dataclasses.asdict(session), "groups": list(session.groups)}

        def work(conn: Connection) -> None:
            conn.execute(
                delete(ota_sessions).where(ota_sessions.c.token_sha256 == session.token_sha256)
            )
            conn.execute(insert(ota_sessions), row)

        await self.database.write(work)

    async def ota_session(
        self, *, token_sha256: str | None = None, challenge_sha256: str | None = None
    ) -> OtaSession | None:
        column, value = (
            (ota_sessions.c.token_sha256, token_sha256)
            if token_sha256 is not None
            else (ota_sessions.c.challenge_sha256, challenge_sha256)
        )
        query = select(ota_sessions).where(column == value)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _ota_session(row)

    async def delete_ota_session(self, token_sha256: str) -> None:
        change = delete(ota_sessions).where(ota_sessions.c.token_sha256 == token_sha256)
        await self.database.write(lambda conn: conn.execute(change))

    async def enrolled_by(self, device_id: str) -> OtaSession | None:
        query = (
            select(ota_sessions)
            .where(and_(ota_sessions.c.device_id == device_id, ota_sessions.c.phase == "enrolled"))
            .order_by(ota_sessions.c.created_at.desc())
            .limit(1)
        )
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _ota_session(row)

    async def list_ota_sessions(self, limit: int = 100) -> list[OtaSession]:
        newest = (ota_sessions.c.created_at.desc(), ota_sessions.c.token_sha256)
        query = select(ota_sessions).order_by(*newest).limit(limit)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_ota_session(row) for row in rows]

    async def certificate_by_sha256(self, sha256: str) -> IssuedCertificate | None:
        query = select(_certs).where(_certs.c.sha256 == sha256)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _certificate(row)

    async def revoke_certificate(self, serial: int, at: datetime) -> bool:
        key = serial_key(serial)
        revoke = (
            update(_certs)
            .where(and_(_certs.c.serial == key, _certs.c.revoked_at.is_(None)))
            .values(status=CertificateStatus.REVOKED.value, revoked_at=at)
        )

        def work(conn: Connection) -> bool:
            conn.execute(revoke)
            return (
                conn.execute(select(_certs.c.serial).where(_certs.c.serial == key)).first()
                is not None
            )

        return await self.database.write(work)

    async def certificates_expiring(self, before: datetime) -> list[IssuedCertificate]:
        query = (
            select(_certs)
            .where(
                and_(_certs.c.status == CertificateStatus.VALID.value, _certs.c.not_after < before)
            )
            .order_by(_certs.c.not_after)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_certificate(row) for row in rows]

    # -- ChallengeStore

    async def add_challenge(
        self,
        challenge_sha256: str,
        expires_at: datetime,
        device_id: str | None = None,
        renewal_of: int | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "challenge_sha256": challenge_sha256,
            "expires_at": expires_at,
            "device_id": device_id,
            "renewal_of": None if renewal_of is None else serial_key(renewal_of),
        }
        await self.database.write(lambda conn: conn.execute(insert(_challenges), values))

    async def consume_challenge(self, challenge_sha256: str, now: datetime) -> ChallengeUse:
        outcome = await self._consume_secret(_challenges, challenge_sha256, now)
        if outcome != ChallengeOutcome.CONSUMED:
            return ChallengeUse(outcome)
        query = select(_challenges.c.device_id, _challenges.c.renewal_of).where(
            _challenges.c.challenge_sha256 == challenge_sha256
        )
        row = await self.database.read(lambda conn: conn.execute(query).one())
        return ChallengeUse(outcome, row.device_id, _serial_or_none(row.renewal_of))

    async def add_enrollment_token(self, token_sha256: str, expires_at: datetime) -> None:
        await self._add_secret(enrollment_tokens, token_sha256, expires_at)

    async def consume_enrollment_token(self, token_sha256: str, now: datetime) -> ChallengeOutcome:
        return await self._consume_secret(enrollment_tokens, token_sha256, now)

    async def _add_secret(self, table: Table, digest: str, expires_at: datetime) -> None:
        key = table.primary_key.columns.values()[0].name
        values = {key: digest, "expires_at": expires_at}
        await self.database.write(lambda conn: conn.execute(insert(table), values))

    async def _consume_secret(self, table: Table, digest: str, now: datetime) -> ChallengeOutcome:
        """A one-time secret (SCEP challenge, enrollment link) used at most once."""
        key = table.primary_key.columns.values()[0]
        # One conditional UPDATE: the database decides which of two racing requests wins.
        claim = (
            update(table)
            .where(and_(key == digest, table.c.used_at.is_(None), table.c.expires_at > now))
            .values(used_at=now)
        )
        lookup = select(table.c.used_at).where(key == digest)

        def work(conn: Connection) -> ChallengeOutcome:
            if conn.execute(claim).rowcount == 1:
                return ChallengeOutcome.CONSUMED
            row = conn.execute(lookup).first()
            if row is None:
                return ChallengeOutcome.UNKNOWN
            return ChallengeOutcome.ALREADY_USED if row.used_at else ChallengeOutcome.EXPIRED

        return await self.database.write(work)

    # -- ScepTransactionStore

    async def save_transaction(self, tx: ScepTransaction) -> None:
        await self.database.write(lambda conn: conn.execute(_upsert_transaction(conn, tx)))

    async def record_issued(self, cert: IssuedCertificate, tx: ScepTransaction) -> None:
        await self._insert_certificate(
            cert, lambda conn: conn.execute(_upsert_transaction(conn, tx))
        )

    async def record_enrolment(
        self,
        cert: IssuedCertificate,
        tx: ScepTransaction,
        challenge_sha256: str | None,
        now: datetime,
    ) -> ScepTransaction | ChallengeOutcome:
        return await scep_enrolment.record(self.database, cert, tx, challenge_sha256, now)

    async def get_transaction(self, transaction_id: str) -> ScepTransaction | None:
        query = select(_transactions).where(_transactions.c.transaction_id == transaction_id)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _transaction(row)

    async def pending_transactions(self) -> list[ScepTransaction]:
        query = (
            select(_transactions)
            .where(_transactions.c.status == ScepTransactionStatus.PENDING.value)
            .order_by(_transactions.c.created_at)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_transaction(row) for row in rows]

    async def _insert_certificate(
        self, cert: IssuedCertificate, then: Callable[[Connection], object]
    ) -> None:
        """Insert `cert`, then run `then(conn)` in the same transaction."""

        def work(conn: Connection) -> None:
            conn.execute(insert(_certs), _certificate_row(cert))
            then(conn)

        try:
            await self.database.write(work)
        except IntegrityError as exc:
            raise ValueError(f"certificate {cert.serial:x} is recorded already") from exc


async def open_storage(url: str, keys: MasterKeys | None = None) -> SqlStorage:
    """Storage on the database at `url`, sealing secrets with `keys` (see SqlStorage); it is
    not migrated here (see `migrate.upgrade`)."""
    return SqlStorage(open_database(url), keys)


def _ota_session(row: Row[Any]) -> OtaSession:
    return OtaSession(**{**row._asdict(), "groups": tuple(row.groups)})


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
        device_id=row.device_id,
        renewal_of=_serial_or_none(row.renewal_of),
    )


def _transaction(row: Row[Any]) -> ScepTransaction:
    serial = row.certificate_serial
    return ScepTransaction(
        transaction_id=row.transaction_id,
        status=ScepTransactionStatus(row.status),
        csr_der=row.csr_der,
        created_at=row.created_at,
        certificate_serial=_serial_or_none(serial),
        device_id=row.device_id,
        renewal_of=_serial_or_none(row.renewal_of),
    )


def _serial_or_none(key: str | None) -> int | None:
    return None if key is None else int(key, 16)


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
        "device_id": cert.device_id,
        "renewal_of": None if cert.renewal_of is None else serial_key(cert.renewal_of),
    }


def _upsert_transaction(conn: Connection, tx: ScepTransaction) -> Any:
    """INSERT … ON CONFLICT DO UPDATE: both backends have it, under dialect-specific names."""
    values = {
        "transaction_id": tx.transaction_id,
        "status": tx.status.value,
        "csr_der": tx.csr_der,
        "created_at": tx.created_at,
        "certificate_serial": (
            None if tx.certificate_serial is None else serial_key(tx.certificate_serial)
        ),
        "device_id": tx.device_id,
        "renewal_of": None if tx.renewal_of is None else serial_key(tx.renewal_of),
    }
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    changed = {k: v for k, v in values.items() if k != "transaction_id"}
    return (
        dialect_insert(_transactions)
        .values(values)
        .on_conflict_do_update(index_elements=["transaction_id"], set_=changed)
    )
