"""Brute-force protection for every password form (console sign-in, /enroll): failures are
counted per account name and per client address; too many within the window lock that
name, or that address, for a while. While locked, the password is not even checked, so a
right guess during the lock teaches nothing.

The name is counted whether or not it exists (an unknown name locks like a known one, so
locks reveal nothing), and a success clears the name's count but not the address's (one
known password must not let an address go on guessing others).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchardist.storage.accounts import SignInThrottleStore

MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class LockoutPolicy:
    account_failures: int = 5
    address_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


def retry_after_seconds(until: datetime, now: datetime) -> int:
    """Whole seconds from `now` to `until`, rounded up, at least 1 (for Retry-After)."""
    return max(1, -(-(until - now) // timedelta(seconds=1)))


class LockedOutError(Exception):
    """Too many failures; str(err) says which (this account or this address) and when to
    try again, for the person at the form; `retry_after` in seconds, for Retry-After."""

    def __init__(self, until: datetime, now: datetime, *, account: bool) -> None:
        self.retry_after = retry_after_seconds(until, now)
        minutes = max(1, -(-int((until - now).total_seconds()) // 60))  # rounded up
        whom = "for this account" if account else "from your address"
        super().__init__(
            f"Too many failed sign-ins {whom}: try again after {until:%H:%M} UTC "
            f"(in {minutes} minute{'s' if minutes != 1 else ''})."
        )
        self.until = until


def account_key(login: str) -> str:
    return "account:" + login.strip().lower()[:MAX_KEY_LENGTH]


def address_key(address: str) -> str:
    return "address:" + address[:MAX_KEY_LENGTH]


class SignInThrottle:
    def __init__(
        self, store: SignInThrottleStore, policy: LockoutPolicy, clock: Callable[[], datetime]
    ) -> None:
        self.store, self.policy, self.clock = store, policy, clock

    async def check(self, login: str, address: str) -> None:
        """Raise LockedOutError while the name or the address is locked."""
        now = self.clock()
        for key, is_account in ((account_key(login), True), (address_key(address), False)):
            until = await self.store.sign_in_locked_until([key], now)
            if until is not None:
                raise LockedOutError(until, now, account=is_account)

    async def failed(self, login: str, address: str) -> None:
        """Count a failure; raise LockedOutError when it locks the name or the address."""
        now, policy = self.clock(), self.policy
        window_start, until = now - policy.window, now + policy.lockout
        counts = ((account_key(login), policy.account_failures, True),
                  (address_key(address), policy.address_failures, False))  # fmt: skip
        locked: LockedOutError | None = None
        for key, limit, is_account in counts:
            lock = await self.store.record_sign_in_failure(
                key, now, window_start=window_start, limit=limit, locked_until=until
            )
            if lock is not None and locked is None:
                locked = LockedOutError(lock, now, account=is_account)
        if locked is not None:
            raise locked

    async def succeeded(self, login: str) -> None:
        await self.store.clear_sign_in_failures(account_key(login))
