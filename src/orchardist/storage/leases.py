"""Named leases: which one process, of all those on one database, runs a background pass
(see orchardist.jobs.leases), and when such a pass last finished."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Lease:
    name: str  # the job: "profiles.repair", "cleanup", …
    holder: str  # the process holding it (host:pid:random, see jobs.leases.holder_id)
    expires_at: datetime  # free for another after this, unless renewed
    done_at: datetime | None  # when a pass under this name last finished, by any holder


class LeaseStore(Protocol):
    async def take_lease(
        self, name: str, holder: str, now: datetime, until: datetime, *, done_before: datetime
    ) -> Lease | None:
        """The lease for `holder` until `until`, when it is free (never taken, released, or
        expired: its holder died or stalled) or `holder`'s already (taken again: renewed),
        and no pass finished after `done_before` (pass `now` to ignore when one did). None
        otherwise. The database decides in one conditional statement, so of several
        processes asking at once exactly one gets it."""

    async def renew_lease(self, name: str, holder: str, until: datetime) -> bool:
        """Extend `holder`'s lease to `until`; False when it is not `holder`'s any more
        (it expired and another process took it)."""

    async def release_lease(self, name: str, holder: str, now: datetime, *, done: bool) -> None:
        """Free the lease if `holder` holds it; with `done`, record `now` as when its pass
        finished. Nothing when another holds it."""


class CleanupStore(Protocol):
    async def purge_stale(self, kind: str, before: datetime, limit: int) -> int:
        """Delete at most `limit` rows of `kind` (see orchardist.jobs.cleanup.KINDS) that
        were dead before `before` (expired, or used); how many. One short transaction."""
