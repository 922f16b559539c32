"""Compliance records and store (see `orchardist.mdm.compliance`): each device's verdict is
kept, so that the device list can filter on it at 100,000 devices, and re-evaluated when
what it was read from changes."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from orchardist.storage.profiles import ProfileState

if TYPE_CHECKING:
    from orchardist.storage import Enrollment


class ComplianceStatus(enum.StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"  # a rule is broken: the reasons say which
    UNKNOWN = "unknown"  # nothing broken, but something could not be checked (no inventory)


@dataclass(frozen=True)
class DeviceCompliance:
    device_id: str
    status: ComplianceStatus
    reasons: tuple[str, ...]  # plain sentences: what is broken, or what could not be checked
    evaluated_at: datetime
    rules: str  # the fingerprint of the rules it was evaluated under
    # When a time-based rule changes by itself (a certificate comes within N days of its
    # expiry, a device goes N days without checking in): re-evaluated then. None: never.
    recheck_at: datetime | None = None
    # The check-in rule is broken: re-evaluated once the device checks in again.
    stale: bool = False


@dataclass(frozen=True)
class LibraryProfile:
    """What the profile library last knew of one profile on one device."""

    identifier: str
    state: ProfileState
    installed_version: int | None


@dataclass(frozen=True)
class ComplianceInput:
    """Everything the rules read about one device, gathered in a few queries per batch."""

    enrollment: Enrollment
    has_inventory: bool  # the device answered at least one query
    security: Mapping[str, Any]  # SecurityInfo, {} when never reported
    listed_profiles: frozenset[str]  # identifiers in its latest ProfileList
    library_profiles: tuple[LibraryProfile, ...]  # only the identifiers asked for
    identity_not_after: datetime | None  # None: its identity certificate is not ours


class ComplianceStore(Protocol):
    async def compliance_inputs(
        self, device_ids: Sequence[str], profiles: Sequence[str] = ()
    ) -> list[ComplianceInput]:
        """The inputs of these devices (unknown ones left out), by device id; the profile
        library's rows only for the identifiers in `profiles`."""

    async def save_compliance(self, rows: Sequence[DeviceCompliance]) -> None:
        """Insert or replace by device id."""

    async def get_compliance(self, device_id: str) -> DeviceCompliance | None:
        """The device's last verdict, or None before its first evaluation."""

    async def compliance_due(
        self, now: datetime, rules: str, *, after: str | None = None, limit: int = 500
    ) -> list[str]:
        """Devices (by id, after `after`) whose verdict is missing or out of date: made under
        other rules, due for a recheck, stale and seen since, re-enrolled or ended since,
        or with inventory newer than the verdict."""

    async def compliance_counts(self) -> dict[str, int]:
        """Devices by status, every status included (zero too); devices never evaluated
        count as unknown."""
