"""An in-memory implementation of every storage role, for unit tests of the cores and for
throw-away tools. Same contracts as the SQL one; nothing survives the process."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from orchardist.storage import (
    ApiToken,
    CertificateStatus,
    ChallengeOutcome,
    ChallengeUse,
    IssuedCertificate,
    ScepTransaction,
    ScepTransactionStatus,
)
from orchardist.storage.audit import AuditEntry, AuditQuery, AuditRecord


class MemoryStorage:
    def __init__(self) -> None:
        self.certificates: dict[int, IssuedCertificate] = {}
        # digest → (expires_at, used_at, device_id, renewal_of)
        self.challenges: dict[str, tuple[datetime, datetime | None, str | None, int | None]] = {}
        self.transactions: dict[str, ScepTransaction] = {}
        self.tokens: dict[str, ApiToken] = {}

    async def add_certificate(self, cert: IssuedCertificate) -> None:
        if cert.serial in self.certificates:
            raise ValueError(f"serial {cert.serial:x} exists already")
        self.certificates[cert.serial] = cert

    async def get_certificate(self, serial: int) -> IssuedCertificate | None:
        return self.certificates.get(serial)

    async def certificate_by_sha256(self, sha256: str) -> IssuedCertificate | None:
        return next((c for c in self.certificates.values() if c.sha256 == sha256), None)

    async def revoke_certificate(self, serial: int, at: datetime) -> bool:
        cert = self.certificates.get(serial)
        if cert is None:
            return False
        if cert.status != CertificateStatus.REVOKED:
            self.certificates[serial] = dataclasses.replace(
                cert, status=CertificateStatus.REVOKED, revoked_at=at
            )
        return True

    async def certificates_expiring(self, before: datetime) -> list[IssuedCertificate]:
        found = [
            c
            for c in self.certificates.values()
            if c.status == CertificateStatus.VALID and c.not_after < before
        ]
        return sorted(found, key=lambda c: c.not_after)

    async def add_challenge(
        self,
        challenge_sha256: str,
        expires_at: datetime,
        device_id: str | None = None,
        renewal_of: int | None = None,
    ) -> None:
        self.challenges[challenge_sha256] = (expires_at, None, device_id, renewal_of)

    async def consume_challenge(self, challenge_sha256: str, now: datetime) -> ChallengeUse:
        return self._consume(challenge_sha256, now)

    def _consume(self, challenge_sha256: str, now: datetime) -> ChallengeUse:
        # Not a coroutine: atomic with respect to other coroutines.
        entry = self.challenges.get(challenge_sha256)
        if entry is None:
            return ChallengeUse(ChallengeOutcome.UNKNOWN)
        expires_at, used_at, device_id, renewal_of = entry
        if used_at is not None:
            return ChallengeUse(ChallengeOutcome.ALREADY_USED)
        if expires_at <= now:
            return ChallengeUse(ChallengeOutcome.EXPIRED)
        self.challenges[challenge_sha256] = (expires_at, now, device_id, renewal_of)
        return ChallengeUse(ChallengeOutcome.CONSUMED, device_id, renewal_of)

    async def save_transaction(self, tx: ScepTransaction) -> None:
        self.transactions[tx.transaction_id] = tx

    async def get_transaction(self, transaction_id: str) -> ScepTransaction | None:
        return self.transactions.get(transaction_id)

    async def pending_transactions(self) -> list[ScepTransaction]:
        waiting = [
            t for t in self.transactions.values() if t.status == ScepTransactionStatus.PENDING
        ]
        return sorted(waiting, key=lambda t: t.created_at)

    async def record_issued(self, cert: IssuedCertificate, tx: ScepTransaction) -> None:
        await self.add_certificate(cert)
        await self.save_transaction(tx)

    async def record_enrolment(
        self,
        cert: IssuedCertificate,
        tx: ScepTransaction,
        challenge_sha256: str | None,
        now: datetime,
    ) -> ScepTransaction | ChallengeOutcome:
        # No await before the writes: atomic with respect to other coroutines.
        previous = self.transactions.get(tx.transaction_id)
        if previous is not None:
            return previous
        device_id, renewal_of = cert.device_id, cert.renewal_of
        if challenge_sha256 is not None:
            used = self._consume(challenge_sha256, now)
            if used.outcome != ChallengeOutcome.CONSUMED:
                return used.outcome
            device_id = used.device_id
            renewal_of = used.renewal_of if used.renewal_of is not None else renewal_of
        if cert.serial in self.certificates:
            raise ValueError(f"serial {cert.serial:x} exists already")
        self.certificates[cert.serial] = dataclasses.replace(
            cert, device_id=device_id, renewal_of=renewal_of
        )
        self.transactions[tx.transaction_id] = dataclasses.replace(
            tx, device_id=device_id, renewal_of=renewal_of
        )
        return ChallengeOutcome.CONSUMED

    async def add_api_token(self, token: ApiToken) -> None:
        if token.name in self.tokens:
            raise ValueError(f"a token named {token.name!r} exists already")
        self.tokens[token.name] = token

    async def find_api_token(self, token_sha256: str) -> ApiToken | None:
        return next((t for t in self.tokens.values() if t.token_sha256 == token_sha256), None)

    async def close(self) -> None:
        """Nothing to release."""

    async def database_problem(self) -> str | None:
        return None  # memory always answers


class MemoryAuditStore:
    """The audit log in a list, held to the same contract as the SQL one."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def add_audit_entry(self, record: AuditRecord) -> int:
        entry_id = len(self.entries) + 1
        self.entries.append(AuditEntry(**dataclasses.asdict(record), entry_id=entry_id))
        return entry_id

    async def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        found = [e for e in reversed(self.entries) if _matches(e, query)]
        return found[: query.limit]


def _matches(entry: AuditEntry, query: AuditQuery) -> bool:
    return (
        query.actor in (None, entry.actor)
        and query.action in (None, entry.action)
        and query.outcome in (None, entry.outcome)
        and (query.target is None or query.target in entry.targets)
        and (query.since is None or entry.at >= query.since)
        and (query.until is None or entry.at < query.until)
        and (query.before is None or entry.entry_id < query.before)
    )
