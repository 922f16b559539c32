"""The device list at scale: one page at a time in a stable order, searched and filtered in
the database. Pages are cut by position (keyset), never by OFFSET, so page 500 costs what
page 1 does."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance

if TYPE_CHECKING:
    from orchardist.storage import Enrollment


class DeviceSort(enum.StrEnum):
    """What the list is ordered by; ties (and devices without the value, which come last
    ascending and first descending) are ordered by UDID."""

    UDID = "udid"
    NAME = "name"
    SERIAL = "serial"
    OS_VERSION = "os_version"  # as numbers: 17.10 after 17.9
    LAST_SEEN = "last_seen"
    ENROLLED_AT = "enrolled_at"


DEVICE_STATES = ("enrolled", "authenticated", "checked_out", "retired", "erased")


@dataclass(frozen=True)
class DeviceFilters:
    """Every filter set must match; None (or empty) means "any"."""

    search: str | None = None  # name contains, serial or UDID starts with, enrolling user
    model: str | None = None  # ProductName (iPhone15,2), ModelName (iPhone) or model number
    os_version: tuple[int, ...] | None = None  # (17, 2): 17.2 and every 17.2.x
    group: str | None = None
    compliance: ComplianceStatus | None = None  # unknown includes never evaluated
    enrolled_by: str | None = None  # the user who enrolled it over the air (exact)
    seen_before: datetime | None = None  # last check-in before this
    seen_after: datetime | None = None  # last check-in at or after this
    state: str | None = None  # one of DEVICE_STATES


SortValue = str | datetime | None


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last device's sort value and UDID. The next page starts
    right after it, however many devices were added or removed meanwhile."""

    value: SortValue
    device_id: str


@dataclass(frozen=True)
class ListedDevice:
    enrollment: Enrollment
    compliance: DeviceCompliance | None  # None: not evaluated yet


@dataclass(frozen=True)
class DevicePage:
    devices: tuple[ListedDevice, ...]
    next: Position | None  # None: this is the last page


class DeviceListStore(Protocol):
    async def list_devices(
        self,
        filters: DeviceFilters,
        *,
        sort: DeviceSort = DeviceSort.UDID,
        descending: bool = False,
        after: Position | None = None,
        limit: int = 100,
    ) -> DevicePage:
        """One page of the devices matching `filters`, in `sort` order, starting after
        `after` (from the start with None). The value of a Position is a str for name,
        serial, OS version (its sort key) and UDID, a datetime for the times."""

    async def device_ids_by_serial(self, serials: Sequence[str]) -> Mapping[str, list[str]]:
        """Each serial number given → the UDIDs of the devices that reported it, sorted
        (more than one: a device enrolled twice, e.g. a User Enrollment beside its device
        enrollment). Matched as given or in capitals, as devices send them; a serial no
        device reported is left out."""
