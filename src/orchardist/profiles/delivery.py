"""The paced delivery of scheduled profile installs.

A change reaching more devices than a request should sign at once (a new version for the
whole fleet) is recorded as scheduled rows (`pending`, no command: see
orchardist.storage.profile_work) and returned; this pass signs each device's copy (its
payloads encrypted to that device) and queues its InstallProfile, at most `per_minute`
devices a minute (a token bucket, full at start). Of all the processes on one database
(`serve --workers N`, several hosts), the one holding the lease "profiles.delivery" runs
it (orchardist.jobs.leases) and keeps it between passes, so the pace holds for the server
as a whole. Each install is queued with its row in one transaction, only if the row is
still scheduled for that version: a pass killed mid-way, or two at once, queue each once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import structlog
from cryptography import x509

from orchardist.apps.rollout import Pacer
from orchardist.polling import Wake, poll_forever
from orchardist.profiles.states import moved
from orchardist.storage import NewCommand
from orchardist.storage.profile_work import ProfileWorkStore, ScheduledInstall
from orchardist.storage.profiles import DeviceProfile, ProfileState, ProfileVersion

log = structlog.get_logger("orchardist.profiles")
BATCH = 100  # scheduled rows read, signed and queued (one transaction) per step
TICK_SECONDS = 5.0  # a pass when nothing wakes it (work scheduled by another process)
NO_IDENTITY = (
    "no identity certificate of ours is known for this device, so the profile cannot be "
    "encrypted to it; it gets the profile when it enrolls again"
)

Signed = Callable[[ProfileVersion, x509.Certificate], bytes]
Install = Callable[[bytes], NewCommand]
Version = Callable[[str, int], Awaitable[ProfileVersion | None]]


class Delivery:
    def __init__(
        self,
        store: ProfileWorkStore,
        *,
        per_minute: int,
        version: Version,
        payload: Signed,
        install: Install,
        clock: Callable[[], datetime],
        changed: Callable[[Sequence[DeviceProfile]], Awaitable[None]],
    ) -> None:
        self.store, self.version, self.payload, self.install = store, version, payload, install
        self.clock, self.changed = clock, changed
        self.pacer = Pacer(per_minute)
        self.queued: Callable[[], None] | None = None  # something was queued: wake the pusher
        self._wake = Wake()

    def wake(self) -> None:
        """Installs were scheduled: this process's loop looks now, not at its next tick."""
        self._wake.set()

    async def run_pass(self, now: datetime | None = None) -> int:
        """Sign and queue scheduled installs within the pace; how many rows were taken
        (queued, or failed for want of an identity)."""
        now = now or self.clock()
        budget, taken = self.pacer.available(now), 0
        versions: dict[tuple[str, int], ProfileVersion | None] = {}
        while taken < budget:
            batch = await self.store.scheduled_installs(min(BATCH, budget - taken))
            if not batch:
                break
            ready = [await self._prepare(item, versions, now) for item in batch]
            changes = await self.store.deliver_scheduled(ready, now)
            taken += len(batch)
            if changes:
                await self.changed(changes)
                if self.queued is not None:
                    self.queued()
        self.pacer.spend(taken)
        return taken

    async def run(
        self,
        leased: Callable[[Callable[[], Awaitable[None]]], Awaitable[bool]],
        *,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        """`serve`'s loop, until cancelled: every tick (or when woken) a pass through
        `leased`, which runs it only in the process holding the delivery lease."""

        async def step() -> None:
            if taken := await self.run_pass():
                log.info("profile_delivery", taken=taken)

        await poll_forever(lambda: leased(step), self._wake, tick_seconds, _log_failure)

    async def _prepare(
        self,
        item: ScheduledInstall,
        versions: dict[tuple[str, int], ProfileVersion | None],
        now: datetime,
    ) -> tuple[DeviceProfile, NewCommand | None]:
        """The row once delivered, and its InstallProfile (signed, encrypted to the device);
        failed, with no command, when the device has no identity of ours."""
        row = item.row
        assert row.desired_version is not None  # scheduled rows name their version
        key = (row.identifier, row.desired_version)
        if key not in versions:
            versions[key] = await self.version(*key)
        stored = versions[key]
        if item.identity_der is None or stored is None:
            return moved(row, ProfileState.FAILED, now, error=NO_IDENTITY), None
        recipient = x509.load_der_x509_certificate(item.identity_der)
        await asyncio.sleep(0)  # a signature each: let requests in between
        record = self.install(self.payload(stored, recipient))
        return moved(row, ProfileState.PENDING, now, command_uuid=record.command_uuid), record


def _log_failure(error: str) -> None:
    log.error("profile_delivery_failed", error=error)
