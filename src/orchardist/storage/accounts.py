"""Who may use the console and the API: local accounts, console sessions, the sign-in
throttle and API tokens (see `orchardist.accounts`).

Secrets never reach these records in clear: passwords as Argon2 hashes, session ids as
SHA-256 digests. (ApiToken lives here, and `orchardist.storage` re-exports it, so that
this module needs nothing from the package it is part of.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ApiToken:
    name: str
    token_sha256: str  # tokens are stored hashed; the clear value is shown once
    role: str
    created_at: datetime
    expires_at: datetime | None = None  # None: never
    revoked_at: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the token cannot be used now (for the 401), or None when it can."""
        if self.revoked_at is not None:
            return f"API token {self.name!r} was revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return f"API token {self.name!r} expired on {self.expires_at:%Y-%m-%d %H:%M} UTC"
        return None

    def state(self, now: datetime) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.refusal(now) is None else "expired"


@dataclass(frozen=True)
class Account:
    """A local console account."""

    name: str
    role: str  # admin, operator or viewer (orchardist.accounts.permissions.Role)
    password_hash: str  # Argon2id, PHC string format
    created_at: datetime
    password_changed_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser. `kind` says where the name comes from: "account" (local) or
    "directory" (LDAP/AD, whose role was mapped from its groups at sign-in)."""

    id_sha256: str
    name: str
    role: str
    kind: str
    csrf_token: str  # the synchronizer token every state-changing form carries
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end, however active the session is


class AccountStore(Protocol):
    async def add_account(self, account: Account) -> None:
        """Record a new account; a duplicate name raises ValueError."""

    async def get_account(self, name: str) -> Account | None:
        """The account with this name, or None."""

    async def list_accounts(self) -> list[Account]:
        """Every account, by name."""

    async def update_account(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        changed_at: datetime | None = None,
        disabled_at: datetime | None = None,
    ) -> bool:
        """Set the given fields (a new hash with the time it changed; a disabling time);
        False when there is no such account."""

    async def enable_account(self, name: str) -> bool:
        """Clear the disabling time (a no-op for an active account); False when there is
        no such account."""


class ConsoleSessionStore(Protocol):
    async def add_console_session(self, session: ConsoleSession) -> None: ...

    async def console_session(self, id_sha256: str) -> ConsoleSession | None:
        """The session with this digest, expired or not, or None."""

    async def touch_console_session(self, id_sha256: str, at: datetime) -> None:
        """Note activity (the idle timeout counts from last_seen_at)."""

    async def delete_console_sessions(
        self, *, id_sha256: str | None = None, name: str | None = None
    ) -> int:
        """Sign out one session, or every session of `name`; how many were removed."""

    async def purge_console_sessions(self, now: datetime, idle_since: datetime) -> int:
        """Remove sessions past their absolute end or idle since before `idle_since`."""


class SignInThrottleStore(Protocol):
    async def sign_in_locked_until(self, keys: Sequence[str], now: datetime) -> datetime | None:
        """The latest lock among `keys` still in force at `now`, or None."""

    async def record_sign_in_failure(
        self, key: str, now: datetime, *, window_start: datetime, limit: int, locked_until: datetime
    ) -> datetime | None:
        """Count one failure for `key` in one transaction (two racing failures both count).
        Failures before `window_start` are forgotten first. When the count reaches `limit`
        the key is locked until `locked_until` (returned) and the count starts again;
        otherwise None."""

    async def clear_sign_in_failures(self, key: str) -> None:
        """Forget the failures (and any lock) of `key`."""


class ApiTokenAdmin(Protocol):
    async def list_api_tokens(self) -> list[ApiToken]:
        """Every token, revoked and expired ones included, by name."""

    async def revoke_api_token(self, name: str, at: datetime) -> bool:
        """Revoke it (a second revocation keeps the first time); False when unknown."""


class AccountStorage(
    AccountStore, ConsoleSessionStore, SignInThrottleStore, ApiTokenAdmin, Protocol
):
    """The roles `orchardist.accounts` uses, on one backend."""
