"""The clean-up pass: rows nothing will read again are deleted once a grace period has
passed since they died, so the tables they sit in stay the size of what is live.

What goes (`KINDS`), each after `grace` (setting `cleanup_grace_days`):
- console sessions that expired (sign-in purges them too, but only when someone signs in);
- enrollment and app catalog sign-in sessions that expired, except a completed
  enrollment's, which says who enrolled the device and with which groups;
- SCEP challenges and one-time enrollment links used or expired: a used one only ever
  refuses a second use, and after the grace period it is refused as unknown instead;
- invitations that expired.

The grace period keeps the recent dead for an admin asking why a link or invitation was
refused. `serve` runs the pass hourly under the lease "cleanup" (jobs/leases.py), so one
process does it; each batch is one short transaction of at most `BATCH` rows, so a large
backlog never holds a long lock, and a pass cut anywhere is finished by the next.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from orchardist.storage.leases import CleanupStore

KINDS = ("console_sessions", "ota_sessions", "scep_challenges", "enrollment_tokens", "invitations")
BATCH = 500
EVERY = timedelta(hours=1)
log = structlog.get_logger("orchardist.cleanup")


class Cleanup:
    def __init__(
        self,
        store: CleanupStore,
        *,
        grace: timedelta,
        clock: Callable[[], datetime],
        batch: int = BATCH,
    ) -> None:
        self.store, self.grace, self.clock, self.batch = store, grace, clock, batch

    async def run_pass(self) -> dict[str, int]:
        """Delete what died more than `grace` ago, batch by batch; how many of each kind."""
        before = self.clock() - self.grace
        purged = {}
        for kind in KINDS:
            total = 0
            while (deleted := await self.store.purge_stale(kind, before, self.batch)) > 0:
                total += deleted
                if deleted < self.batch:
                    break
            purged[kind] = total
        log.info("cleanup", **purged)
        return purged
