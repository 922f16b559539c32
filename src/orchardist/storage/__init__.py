"""Storage seams: the records the cores persist and the small role interfaces that hold them.

Nothing here imports SQLAlchemy; the SQL implementation lives in `orchardist.storage.sql`.
Every datetime crossing these interfaces is timezone-aware (UTC).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class CertificateStatus(enum.StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate our CA signed. `serial` is the X.509 serial (128-bit, so stored as hex)."""

    serial: int
    subject: str
    not_before: datetime
    not_after: datetime
    sha256: str  # lower-case hex fingerprint of the DER
    der: bytes
    status: CertificateStatus = CertificateStatus.VALID
    revoked_at: datetime | None = None


class ChallengeOutcome(enum.StrEnum):
    CONSUMED = "consumed"  # it existed, was unused and unexpired; now it is used
    UNKNOWN = "unknown"
    ALREADY_USED = "already_used"
    EXPIRED = "expired"


class ScepTransactionStatus(enum.StrEnum):
    PENDING = "pending"
    ISSUED = "issued"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ScepTransaction:
    """One SCEP enrolment, keyed by the client's transactionID (constant across polls)."""

    transaction_id: str
    status: ScepTransactionStatus
    csr_der: bytes
    created_at: datetime
    certificate_serial: int | None = None


@dataclass(frozen=True)
class ApiToken:
    name: str
    token_sha256: str  # tokens are stored hashed; the clear value is shown once
    role: str
    created_at: datetime


class CertificateStore(Protocol):
    async def add_certificate(self, cert: IssuedCertificate) -> None:
        """Record a newly issued certificate. A duplicate serial raises ValueError."""

    async def get_certificate(self, serial: int) -> IssuedCertificate | None:
        """The certificate with this serial, or None when we never issued it."""

    async def revoke_certificate(self, serial: int, at: datetime) -> bool:
        """Mark it revoked; False when unknown. Revoking twice keeps the first time."""

    async def certificates_expiring(self, before: datetime) -> list[IssuedCertificate]:
        """Valid certificates whose not_after is before `before`, soonest first."""


class ChallengeStore(Protocol):
    async def add_challenge(self, challenge_sha256: str, expires_at: datetime) -> None:
        """Store a one-time challenge by the hash of its value."""

    async def consume_challenge(self, challenge_sha256: str, now: datetime) -> ChallengeOutcome:
        """Atomically use a challenge: two concurrent callers never both get CONSUMED."""


class ScepTransactionStore(Protocol):
    async def save_transaction(self, tx: ScepTransaction) -> None:
        """Insert or replace the transaction with this transaction_id."""

    async def get_transaction(self, transaction_id: str) -> ScepTransaction | None:
        """The transaction, or None when unknown."""

    async def record_issued(self, cert: IssuedCertificate, tx: ScepTransaction) -> None:
        """`add_certificate` and `save_transaction` in one transaction: both or neither."""

    async def pending_transactions(self) -> list[ScepTransaction]:
        """Transactions waiting for an administrator, oldest first."""


class ApiTokenStore(Protocol):
    async def add_api_token(self, token: ApiToken) -> None:
        """Record a token; a duplicate name raises ValueError."""

    async def find_api_token(self, token_sha256: str) -> ApiToken | None:
        """The token with this hash, or None."""


class Storage(CertificateStore, ChallengeStore, ScepTransactionStore, ApiTokenStore, Protocol):
    """Every role on one backend, as the wiring hands it around."""

    async def close(self) -> None:
        """Release connections; the object is unusable afterwards."""
