"""SCEP challenge passwords: one-time challenges (the default) and an optional static one.

Challenges are secrets: only their SHA-256 is stored, and they never reach a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from orchardist.storage import ChallengeOutcome, ChallengeStore, ChallengeUse


def challenge_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class ChallengeVerifier:
    """Issues one-time challenges and decides whether a presented one is acceptable."""

    def __init__(
        self,
        store: ChallengeStore,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime],
        static_challenge: str | None = None,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._static = static_challenge or None

    async def issue(
        self,
        *,
        device_id: str | None = None,
        expires_at: datetime | None = None,
        renewal_of: int | None = None,
    ) -> tuple[str, datetime]:
        """A fresh one-time challenge and the moment it expires (`expires_at`, or after the
        configured lifetime). With `device_id`, the certificate it yields is bound to that
        device (over-the-air enrollment, where the UDID came signed by Apple's device CA; an
        identity renewal, where the device's bound certificate carried the profile). With
        `renewal_of` (an identity renewal only), that certificate renews the one with this
        serial: MDM keeps the enrollment's queue for it (mdm/binding.py `renews`)."""
        value = secrets.token_urlsafe(24)
        expires_at = expires_at or self._clock() + self._ttl
        await self._store.add_challenge(challenge_digest(value), expires_at, device_id, renewal_of)
        return value, expires_at

    def digest_to_consume(self, presented: str) -> str | None:
        """What `ScepTransactionStore.record_enrolment` consumes for a presented challenge:
        its digest, or None for the static challenge, which is never used up."""
        if self._static is not None and hmac.compare_digest(
            presented.encode("utf-8"), self._static.encode("utf-8")
        ):
            return None
        return challenge_digest(presented)

    async def check(self, presented: str | None) -> ChallengeUse:
        """CONSUMED when the request may proceed (a one-time challenge is used up by this),
        with the device the challenge was minted for and the serial it renews (an identity
        renewal's); the static challenge binds and renews nothing."""
        if not presented:
            return ChallengeUse(ChallengeOutcome.UNKNOWN)
        if self._static is not None and hmac.compare_digest(
            presented.encode("utf-8"), self._static.encode("utf-8")
        ):
            return ChallengeUse(ChallengeOutcome.CONSUMED)
        return await self._store.consume_challenge(challenge_digest(presented), self._clock())
