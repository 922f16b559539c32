"""Storage seams: the records the cores persist and the small role interfaces that hold them.

Nothing here imports SQLAlchemy; the SQL implementation lives in `orchardist.storage.sql`.
Every datetime crossing these interfaces is timezone-aware (UTC).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from orchardist.storage.accounts import AccountStorage
from orchardist.storage.accounts import ApiToken as ApiToken
from orchardist.storage.apps import AppStore
from orchardist.storage.audit import AuditStore
from orchardist.storage.command_log import CommandLogStore
from orchardist.storage.compliance import ComplianceStore
from orchardist.storage.dashboard import DashboardStore
from orchardist.storage.inventory import InventoryStore
from orchardist.storage.leases import CleanupStore, LeaseStore
from orchardist.storage.listing import DeviceListStore
from orchardist.storage.profiles import ProfileStore
from orchardist.storage.provisioning import ProvisioningStore
from orchardist.storage.scopes import Scope
from orchardist.storage.stats import StatsStore
from orchardist.storage.webhooks import WebhookStore


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
    # The device it was issued for, when issuance was tied to one (a one-time challenge
    # minted for that UDID, or a renewal of a certificate that was): see mdm/binding.py.
    device_id: str | None = None
    renewal_of: int | None = None  # the serial of the certificate a SCEP renewal replaced


class ChallengeOutcome(enum.StrEnum):
    CONSUMED = "consumed"  # it existed, was unused and unexpired; now it is used
    UNKNOWN = "unknown"
    ALREADY_USED = "already_used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ChallengeUse:
    """What presenting a one-time challenge came to: the outcome and, when CONSUMED, what
    the challenge was minted for (else both None)."""

    outcome: ChallengeOutcome
    device_id: str | None = None  # the device whose certificate it binds
    renewal_of: int | None = None  # the serial an identity renewal's challenge renews


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
    device_id: str | None = None  # the device its challenge was issued for (held requests)
    # The serial its challenge was minted to renew (mdm/renewal.py): a held request keeps
    # it until approval, so the certificate then issued is still a renewal.
    renewal_of: int | None = None


class CertificateStore(Protocol):
    async def add_certificate(self, cert: IssuedCertificate) -> None:
        """Record a newly issued certificate. A duplicate serial raises ValueError."""

    async def get_certificate(self, serial: int) -> IssuedCertificate | None:
        """The certificate with this serial, or None when we never issued it."""

    async def certificate_by_sha256(self, sha256: str) -> IssuedCertificate | None:
        """The certificate with this fingerprint (a device's bound identity), or None."""

    async def revoke_certificate(self, serial: int, at: datetime) -> bool:
        """Mark it revoked; False when unknown. Revoking twice keeps the first time."""

    async def certificates_expiring(self, before: datetime) -> list[IssuedCertificate]:
        """Valid certificates whose not_after is before `before`, soonest first."""


class ChallengeStore(Protocol):
    async def add_challenge(
        self,
        challenge_sha256: str,
        expires_at: datetime,
        device_id: str | None = None,
        renewal_of: int | None = None,
    ) -> None:
        """Store a one-time challenge by the hash of its value; `device_id` when it was
        minted for one device (over-the-air enrollment), whose certificate it then binds;
        `renewal_of` when minted to renew the certificate with that serial (identity
        renewal), which `record_enrolment` copies into the certificate it yields."""

    async def consume_challenge(self, challenge_sha256: str, now: datetime) -> ChallengeUse:
        """Atomically use a challenge: two concurrent callers never both get CONSUMED.
        When consumed, also the device and the renewed serial it was minted with, if any."""


class EnrollmentTokenStore(Protocol):
    async def add_enrollment_token(self, token_sha256: str, expires_at: datetime) -> None:
        """Store a one-time enrollment link's token by its hash."""

    async def consume_enrollment_token(self, token_sha256: str, now: datetime) -> ChallengeOutcome:
        """Atomically use it, as consume_challenge does."""


class ScepTransactionStore(Protocol):
    async def save_transaction(self, tx: ScepTransaction) -> None:
        """Insert or replace the transaction with this transaction_id."""

    async def get_transaction(self, transaction_id: str) -> ScepTransaction | None:
        """The transaction, or None when unknown."""

    async def record_issued(self, cert: IssuedCertificate, tx: ScepTransaction) -> None:
        """`add_certificate` and `save_transaction` in one transaction: both or neither."""

    async def record_enrolment(
        self,
        cert: IssuedCertificate,
        tx: ScepTransaction,
        challenge_sha256: str | None,
        now: datetime,
    ) -> ScepTransaction | ChallengeOutcome:
        """A PKCSReq's whole write, in one transaction. When a transaction with
        tx.transaction_id exists, it is returned and nothing is checked or written (the
        request is a resend, RFC 8894 §3.3.1). Otherwise the one-time challenge with this
        digest is consumed (None: nothing to consume, as for the static challenge) and
        `cert` and `tx` recorded, bound to the challenge's device if it has one (and its
        renewal_of, if it has one, recorded as the certificate's): CONSUMED.
        Any other outcome says why the challenge was refused, and nothing is written."""

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

    async def database_problem(self) -> str | None:
        """None when the database answers a read now, otherwise why not (one line): what
        /healthz and /readyz report. Cheap: load balancers ask every few seconds."""


# -- MDM enrollments and the command queue


@dataclass(frozen=True)
class DeviceFacts:
    """What an Authenticate check-in tells about a device."""

    device_id: str  # UDID, or EnrollmentID for a User Enrollment
    topic: str
    serial_number: str | None = None
    model: str | None = None
    model_name: str | None = None
    product_name: str | None = None
    os_version: str | None = None
    build_version: str | None = None
    device_name: str | None = None
    imei: str | None = None
    meid: str | None = None


class EndedBy(enum.StrEnum):
    """How an enrollment ended: until one of these, the device is bound to its certificate."""

    CHECKED_OUT = "checked_out"  # the device said so (CheckOut)
    RETIRED = "retired"  # an administrator (device retire); its certificate is revoked
    ERASED = "erased"  # the device acknowledged EraseDevice


@dataclass(frozen=True)
class Enrollment:
    facts: DeviceFacts
    identity_sha256: str  # the identity certificate bound at Authenticate
    enrolled: bool  # from the first TokenUpdate until CheckOut
    authenticated_at: datetime
    token: bytes | None = None  # APNs device token
    push_magic: str | None = None
    unlock_token: bytes | None = None
    bootstrap_token: bytes | None = None
    enrolled_at: datetime | None = None
    last_seen_at: datetime | None = None
    checked_out_at: datetime | None = None
    pushed_at: datetime | None = None  # the last push APNs accepted
    token_invalid_at: datetime | None = None  # APNs refused the token; no pushes until TokenUpdate
    ended_by: EndedBy | None = None  # None from Authenticate until the enrollment ends

    @property
    def device_id(self) -> str:
        return self.facts.device_id

    @property
    def state(self) -> str:
        """enrolled; authenticated (no TokenUpdate yet); or how it ended: checked_out,
        retired, erased."""
        if self.ended_by is not None:
            return self.ended_by.value
        return "enrolled" if self.enrolled else "authenticated"


class TargetStatus(enum.StrEnum):
    """One command's state on one device."""

    QUEUED = "queued"
    SENT = "sent"  # sent, not answered yet: offered again until it is
    NOT_NOW = "not_now"  # the device said NotNow: skipped until its next Idle
    ACKNOWLEDGED = "acknowledged"
    ERROR = "error"
    COMMAND_FORMAT_ERROR = "command_format_error"
    CANCELLED = "cancelled"  # the device re-enrolled (Authenticate) before running it
    EXPIRED = "expired"  # shown for commands past their expiry that never ran


ANSWERED = frozenset(
    {TargetStatus.ACKNOWLEDGED, TargetStatus.ERROR, TargetStatus.COMMAND_FORMAT_ERROR}
)


class ReportOutcome(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # answered before: the first answer stands
    UNKNOWN = "unknown"  # no such command for this device


@dataclass(frozen=True)
class NewCommand:
    command_uuid: str
    request_type: str
    body: bytes  # the plist the device receives
    priority: int = 0  # higher first; equal priorities in creation order
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TargetState:
    command_uuid: str
    device_id: str
    request_type: str
    status: TargetStatus
    created_at: datetime
    answered_at: datetime | None
    result: bytes | None  # the device's whole report, as sent


@dataclass(frozen=True)
class Exchange:
    """One device request to the ServerURL: its report (None for Idle) and what to answer."""

    outcome: ReportOutcome | None
    next_command: tuple[str, bytes] | None  # (CommandUUID, plist) or None: reply empty
    stored_request_type: str | None = None  # the RequestType of a STORED report
    # The RequestType of a DUPLICATE: a server killed after storing a result, before acting
    # on it, hears the answer again and acts then (what follows a result is idempotent).
    duplicate_request_type: str | None = None


@dataclass(frozen=True)
class IdleState:
    """What an Idle needs to know, read in one query: is the caller the bound identity, is
    its certificate still valid (not revoked), is anything waiting for it."""

    identity_sha256: str
    certificate_valid: bool
    pending: bool  # a command to send (queued, sent unanswered, or NotNow'd; not expired)
    last_seen_at: datetime | None


@dataclass(frozen=True)
class BindingState:
    """What an Authenticate checks (mdm/binding.py), read in one query."""

    presented: IssuedCertificate | None  # our record of the presented serial; None: not ours
    bound_elsewhere: str | None  # another device whose enrollment is bound to `presented`
    current_sha256: str | None  # the certificate the device's enrollment is bound to
    current_ended: bool  # that enrollment has ended (CheckOut, retire, erase)
    current_serial: int | None  # that certificate's serial, when our CA issued it


# How stale last_seen_at may get: an Idle writes it only when it is older than this, so a
# device polling every few seconds costs one write a minute, not one a request.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


class EnrollmentStore(Protocol):
    async def authenticate(self, facts: DeviceFacts, identity_sha256: str, now: datetime) -> None:
        """Create or refresh the enrollment, not enrolled until TokenUpdate, bound to this
        identity; commands still pending for the device are cancelled (a new enrollment)."""

    async def token_update(
        self,
        device_id: str,
        *,
        token: bytes,
        push_magic: str,
        unlock_token: bytes | None,
        now: datetime,
    ) -> bool:
        """Store push data and mark enrolled; a missing UnlockToken keeps the stored one.
        False when the device never authenticated."""

    async def check_out(
        self, device_id: str, now: datetime, ended_by: EndedBy = EndedBy.CHECKED_OUT
    ) -> bool:
        """End the enrollment (unenrolled, `ended_by` recorded, what was queued cancelled and
        its push dropped); False when unknown."""

    async def device_bound_to(self, identity_sha256: str, other_than: str) -> str | None:
        """A device other than `other_than` whose enrollment (ended or not) is bound to
        this certificate, or None: a certificate serves one device, ever."""

    async def binding_state(self, serial: int, device_id: str) -> BindingState:
        """For an Authenticate from `device_id` signed by the certificate with `serial`:
        our record of it and what binds it and the device (one database round trip)."""

    async def rebind(
        self, device_id: str, identity_sha256: str, facts: DeviceFacts | None, now: datetime
    ) -> bool:
        """Move the enrollment, if it has not ended, to a renewed identity (mdm/binding.py
        `renews`): still enrolled, its queue and push data kept; with `facts` (an
        Authenticate's) they and authenticated_at are refreshed too. False when there is
        no such enrollment."""

    async def refresh_facts(self, device_id: str, facts: Mapping[str, str]) -> None:
        """Overwrite DeviceFacts fields (by field name) with newer values from a query."""

    async def set_bootstrap_token(self, device_id: str, token: bytes | None) -> bool:
        """Store (or clear, with None) the bootstrap token; False when unknown."""

    async def get_enrollment(self, device_id: str) -> Enrollment | None:
        """The enrollment, or None."""

    async def list_enrollments(self) -> list[Enrollment]:
        """Every enrollment, by device_id."""

    async def device_ids(
        self, among: Sequence[str] | None = None, *, enrolled: bool = False
    ) -> list[str]:
        """Known device ids (only those in `among` when given; only enrolled ones with
        `enrolled`), sorted: what a 100,000-device fan-out needs, without whole rows."""


class CommandStore(Protocol):
    async def enqueue(self, command: NewCommand, device_ids: Sequence[str], now: datetime) -> int:
        """Queue one command for these devices; returns how many targets were queued."""

    async def enqueue_to(self, command: NewCommand, scope: Scope, now: datetime) -> int:
        """Queue one command for the devices of `scope` (see storage.scopes), each given a
        push job due now, in one transaction; returns how many targets were queued (0 for
        a scope without devices: the command is stored all the same). LookupError, with
        nothing queued, for a group that does not exist (has no members)."""

    async def exchange(
        self,
        device_id: str,
        report: tuple[str, TargetStatus, bytes] | None,
        now: datetime,
        *,
        seen: bool = True,
    ) -> Exchange:
        """In one transaction: store the report (CommandUUID, status, whole plist) unless it
        was answered already or is unknown; on Idle (report None) offer NotNow'd commands
        again; then pick the next command (highest priority, oldest, not expired, not
        NotNow'd in this session), mark it sent, and note the device as seen unless `seen`
        is False (it was, within LAST_SEEN_RESOLUTION). With an UNKNOWN report nothing is
        stored and no command is picked."""

    async def idle_state(self, device_id: str, now: datetime) -> IdleState | None:
        """The Idle's one query (one database round trip); None for an unknown device."""

    async def touch(self, device_id: str, now: datetime) -> None:
        """Note the device as seen."""

    async def command_targets(
        self,
        command_uuid: str,
        now: datetime,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[TargetState]:
        """Per-device state of a command by device id (EXPIRED shown for expired unanswered
        ones); a page of them with `limit`, continuing after the device id `after`."""

    async def device_commands(
        self, device_id: str, now: datetime, limit: int = 100
    ) -> list[TargetState]:
        """The device's commands, newest first."""


class MdmStorage(EnrollmentStore, CommandStore, Protocol):
    """The MDM roles on one backend."""


# -- invitations (see orchardist.enroll.invitations)


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    user: str
    email: str | None
    phone: str | None
    email_status: str | None  # "sent" or why not
    sms_status: str | None
    created_at: datetime
    expires_at: datetime


class InvitationStore(Protocol):
    async def add_invitation(self, invitation: Invitation) -> None: ...

    async def list_invitations(self, limit: int = 100) -> list[Invitation]:
        """Newest first."""


# -- over-the-air enrollment sessions (see orchardist.enroll.flow)


@dataclass(frozen=True)
class OtaSession:
    token_sha256: str  # the web session (a hidden form field), stored hashed
    user: str
    groups: tuple[str, ...]
    phase: str  # signed-in, consented, identified, enrolled
    created_at: datetime
    expires_at: datetime
    challenge_sha256: str | None = None  # the Profile Service challenge
    device_id: str | None = None


class OtaSessionStore(Protocol):
    async def save_ota_session(self, session: OtaSession) -> None:
        """Insert or replace by token."""

    async def ota_session(
        self, *, token_sha256: str | None = None, challenge_sha256: str | None = None
    ) -> OtaSession | None: ...

    async def delete_ota_session(self, token_sha256: str) -> None: ...

    async def enrolled_by(self, device_id: str) -> OtaSession | None:
        """The completed session that enrolled this device (who, with which groups)."""

    async def list_ota_sessions(self, limit: int = 100) -> list[OtaSession]:
        """The latest sessions, newest first, whatever their phase (expired ones too, until
        they are deleted): what the console's Enrollment page lists."""


# -- push jobs (see orchardist.push.pusher)


@dataclass(frozen=True)
class PushTarget:
    """A device a pusher has claimed: push it, then report a PushDone under `claim`."""

    device_id: str
    token: bytes
    push_magic: str
    attempts: int  # pushes accepted since its commands were queued
    claim: str


@dataclass(frozen=True)
class PushDone:
    device_id: str
    next_due: datetime | None  # None: nothing more to push (the job is removed)
    attempts: int
    # When APNs accepted it (None: it did not): the device's pushed_at, and the time the
    # next re-push (next_due) was counted from.
    accepted_at: datetime | None = None
    token_invalid: bool = False  # APNs refused the token: no pushes until TokenUpdate


class PushStore(Protocol):
    async def request_push(self, device_ids: Sequence[str], now: datetime) -> None:
        """Make a push due now for these devices (one per device however often asked)."""

    async def claim_pushes(self, now: datetime, lease: timedelta, limit: int) -> list[PushTarget]:
        """Claim up to `limit` due, unclaimed (or lease-expired) jobs for `lease`; jobs of
        devices with nothing pending or no usable token are removed instead. First pushes
        (never accepted since the last enqueue) before re-pushes, oldest due first; no
        re-push while a first push is due or claimed. Two callers, in one process or
        several, never hold the same job at once. A claim moves neither `attempts` nor the
        due time: a job whose lease ends unreported is claimed again as it was."""

    async def finish_pushes(self, claim: str, done: Sequence[PushDone], now: datetime) -> None:
        """Record the outcome of claimed jobs; a job re-queued since (a newer enqueue) keeps
        its new due time."""

    async def push_backlog(self, now: datetime) -> int:
        """How many jobs are due now."""

    async def command_counts(self, command_uuid: str, now: datetime) -> dict[str, int]:
        """Per-status target counts, with queued split into queued / pushed."""


class AllStorage(
    Storage,
    AccountStorage,
    MdmStorage,
    PushStore,
    ProfileStore,
    InventoryStore,
    EnrollmentTokenStore,
    InvitationStore,
    OtaSessionStore,
    StatsStore,
    WebhookStore,
    ComplianceStore,
    DeviceListStore,
    AuditStore,
    DashboardStore,
    CommandLogStore,
    AppStore,
    ProvisioningStore,
    LeaseStore,
    CleanupStore,
    Protocol,
):
    """Every role: what the wiring builds (SqlStorage) and the HTTP layers use."""
