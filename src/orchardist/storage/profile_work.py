"""What a profile reconciliation pass reads and writes a page at a time (see
`orchardist.profiles.library` and `orchardist.profiles.delivery`): the difference between
what is assigned and what each device was given is computed by the database, for a page of
devices, so a pass over 100,000 devices holds one page in memory, not the fleet.

A scheduled install is a device state row `pending` with no command yet: what a change too
large to sign in the request leaves for the paced delivery pass (one process at a time,
under the lease "profiles.delivery"), which signs and queues it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from orchardist.storage.profiles import DeviceProfile

if TYPE_CHECKING:  # orchardist.storage imports the profile records
    from orchardist.storage import NewCommand


@dataclass(frozen=True)
class WorkScope:
    """Which devices and profiles a pass looks at; all of them with the defaults.

    identifier: only this profile (a new version, an assignment, a deletion), and only the
        devices it reaches or that hold a row for it.
    group: only the profiles assigned to this group, and only its members and the devices
        holding a row for one of those profiles (a member that left it).
    devices: only these devices (at most a page of them)."""

    identifier: str | None = None
    group: str | None = None
    devices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WantedInstall:
    device_id: str
    identifier: str
    version: int  # the latest version assigned to the device
    row: DeviceProfile | None  # the device's row for it now, if any
    identity_der: bytes | None  # the device's identity certificate, when ours


@dataclass(frozen=True)
class WorkPage:
    devices: Sequence[str]  # the page's devices in the scope, by id; empty at the end
    installs: Sequence[WantedInstall]  # what they lack or hold in an older version
    removals: Sequence[DeviceProfile]  # rows no longer assigned, not removing or removed
    scheduled: int = 0  # with schedule_work: installs scheduled (then none in `installs`)


@dataclass(frozen=True)
class ScheduledInstall:
    row: DeviceProfile  # pending, with no command
    identity_der: bytes | None  # the device's identity certificate, when ours


class ProfileWorkStore(Protocol):
    async def profile_work(self, scope: WorkScope, after: str | None, limit: int) -> WorkPage:
        """In one read: the first `limit` devices in `scope` whose id sorts after `after`
        (enrolled or not: a device that left keeps rows to remove), what each of them
        lacks (devices enrolled only; deleted profiles never wanted) and what each holds
        that is no longer assigned. A row `pending`, `installed` or `failed` at the latest
        version is settled (a scheduled one waits for delivery)."""

    async def schedule_work(
        self, scope: WorkScope, after: str | None, limit: int, now: datetime
    ) -> WorkPage:
        """As `profile_work`, in one transaction, but what the page lacks is scheduled (as
        `schedule_installs` would) by the database itself, and counted, not returned."""

    async def schedule_installs(self, rows: Sequence[DeviceProfile]) -> int:
        """Save each row (pending at its version, no command) where the stored row still
        lacks that version (none, another version, or not pending, installed or failed):
        the comparison `profile_work` made, made again by the database as it writes, so a
        row another pass settled meanwhile is left as it is. How many were saved. One
        statement for all of them."""

    async def scheduled_installs(self, limit: int) -> list[ScheduledInstall]:
        """Up to `limit` scheduled installs of enrolled devices, by device and identifier."""

    async def deliver_scheduled(
        self, deliveries: Sequence[tuple[DeviceProfile, NewCommand | None]], now: datetime
    ) -> list[DeviceProfile]:
        """In one transaction, for each (row, command): the row saved over the scheduled row
        of its device and profile if that is still scheduled for `row.desired_version`, and
        the command (if any) queued for the device with it; the rows saved. Two deliveries
        at once queue each install once; a pass killed mid-way leaves none half done."""

    async def profile_holders(self, after: str | None, limit: int) -> list[str]:
        """The first `limit` devices after `after` holding an installed profile, by id."""
