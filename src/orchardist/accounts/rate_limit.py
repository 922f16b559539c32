"""A rate limit on sign-in *attempts* (right or wrong) per account name and per client
address, for the enrollment site's directory sign-in, in front of the failure lockout
(`lockout`). The lockout stops password guessing; this also bounds what the lockout does not
count — right passwords, names the directory refuses for other reasons — so that one name or
one address cannot keep the directory binding (each attempt is a search and a bind) or keep
opening enrollment sessions, and it spares the directory's own lockout from being driven by
us.

At most `per_account` attempts for one name, or `per_address` from one address, within
`window`; the attempt that reaches the limit still goes through, later ones wait a `window`
from it. Counts live in the lockout's store under their own keys (so every server process
shares them and a success does not clear them); a refused attempt is not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchardist.accounts.lockout import MAX_KEY_LENGTH, retry_after_seconds
from orchardist.storage.accounts import SignInThrottleStore


@dataclass(frozen=True)
class RateLimitPolicy:
    per_account: int = 10
    per_address: int = 100
    window: timedelta = timedelta(minutes=15)


class RateLimitedError(Exception):
    """Too many attempts; str(err) says which (this account or this address) and when to
    try again, for the person at the form. `retry_after` is whole seconds (rounded up), for
    the Retry-After header."""

    def __init__(self, until: datetime, now: datetime, *, account: bool) -> None:
        self.until, self.account = until, account
        self.retry_after = retry_after_seconds(until, now)
        minutes = max(1, -(-self.retry_after // 60))  # rounded up
        whom = "for this account" if account else "from your network address"
        super().__init__(
            f"Too many sign-in attempts {whom}: try again after {until:%H:%M} UTC "
            f"(in {minutes} minute{'s' if minutes != 1 else ''})."
        )


def attempts_key(kind: str, value: str) -> str:
    """`attempts:account:NAME` or `attempts:address:IP`: apart from the lockout's keys."""
    if kind == "account":
        value = value.strip().lower()
    return f"attempts:{kind}:{value[:MAX_KEY_LENGTH]}"


class SignInRateLimit:
    def __init__(
        self,
        store: SignInThrottleStore,
        policy: RateLimitPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.policy, self.clock = store, policy, clock

    async def admit(self, login: str, address: str) -> None:
        """Count this attempt, or raise RateLimitedError (not counting it) while the name or
        the address is over its limit."""
        now, policy = self.clock(), self.policy
        keys = ((attempts_key("account", login), policy.per_account, True),
                (attempts_key("address", address), policy.per_address, False))  # fmt: skip
        for key, _, is_account in keys:
            until = await self.store.sign_in_locked_until([key], now)
            if until is not None:
                raise RateLimitedError(until, now, account=is_account)
        for key, limit, _ in keys:
            # The store counts "failures"; here every attempt is one. Reaching the limit
            # sets the wait that the next attempt meets.
            await self.store.record_sign_in_failure(
                key, now, window_start=now - policy.window, limit=limit,
                locked_until=now + policy.window,
            )  # fmt: skip
