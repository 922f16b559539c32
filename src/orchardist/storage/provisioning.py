"""Provisioning profiles' records and store: the uploaded .mobileprovision files, their
assignments, and each device's state for each profile.

A profile is known by the UUID Apple gives it; Apple issues a new UUID for every renewal,
so a renewal is a new profile whose predecessor gets `replaced_by`. The bytes are stored
whole (they are small: the store refuses more than PROVISIONING_MAX_BYTES). Assignments
reuse the profile library's shape (`Assignment`, with the UUID as its `identifier`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from orchardist.storage.profiles import Assignment, TargetKind

if TYPE_CHECKING:  # orchardist.storage imports this module
    from orchardist.storage import NewCommand

PROVISIONING_MAX_BYTES = 1024 * 1024


class ProvisioningState(enum.StrEnum):
    PENDING = "pending"  # InstallProvisioningProfile queued, not answered yet
    INSTALLED = "installed"
    FAILED = "failed"  # the device refused it; `error` says why
    MISSING = "missing"  # installed once, absent from the device's ProvisioningProfileList
    REMOVING = "removing"  # RemoveProvisioningProfile queued
    REMOVED = "removed"


@dataclass(frozen=True)
class StoredProvisioningProfile:
    uuid: str
    name: str
    team_id: str
    app_id: str  # "TEAMID.com.example.app", or a wildcard such as "TEAMID.*"
    expires_at: datetime
    provisions_all_devices: bool  # enterprise (in-house) profiles
    device_count: int  # the UDIDs it lists (0 with provisions_all_devices)
    sha256: str  # of `body`
    body: bytes  # the .mobileprovision as uploaded (CMS-signed)
    created_at: datetime
    replaced_by: str | None = None  # the UUID of the profile that renews it
    # The last expiry warning logged for it: 30, 14, 7 days before, 0 once expired (None:
    # none yet). See `claim_provisioning_expiry_warning`.
    expiry_warned_days: int | None = None


@dataclass(frozen=True)
class DeviceProvisioning:
    device_id: str
    uuid: str
    state: ProvisioningState
    command_uuid: str | None
    error: str | None
    updated_at: datetime


class ProvisioningStore(Protocol):
    async def add_provisioning_profile(self, profile: StoredProvisioningProfile) -> bool:
        """Store it; False (and nothing changed) when its UUID is stored already. Raises
        ValueError when the body exceeds PROVISIONING_MAX_BYTES."""

    async def get_provisioning_profile(self, uuid: str) -> StoredProvisioningProfile | None: ...

    async def list_provisioning_profiles(
        self, *, app_id: str | None = None
    ) -> list[StoredProvisioningProfile]:
        """Every profile (for one app id, if given), by app id, then latest expiry first."""

    async def provisioning_profiles_expiring(
        self, before: datetime
    ) -> list[StoredProvisioningProfile]:
        """Profiles not replaced that expire before `before`, soonest first."""

    async def mark_provisioning_replaced(self, uuid: str, replaced_by: str | None) -> bool:
        """Record (or, with None, clear) the profile that renews `uuid`; False when there
        is no such profile."""

    async def claim_provisioning_expiry_warning(self, uuid: str, days: int) -> bool:
        """Record that the warning `days` before expiry is given; True only for the one
        caller that moved the record down to `days` (it was unset or larger), so each
        warning is logged once, by one of several servers."""

    async def delete_provisioning_profile(self, uuid: str) -> bool:
        """Forget the profile, its assignments and device rows; False when unknown."""

    async def set_provisioning_assignments(
        self, uuid: str, kind: TargetKind, targets: Sequence[str], *, assigned: bool
    ) -> None:
        """Add (or, with assigned=False, remove) assignments; adding one twice keeps one."""

    async def provisioning_assignments(self, uuid: str | None = None) -> list[Assignment]:
        """By UUID, kind, target; `identifier` is the profile's UUID."""

    async def save_device_provisioning(self, rows: Sequence[DeviceProvisioning]) -> None:
        """Upsert by (device_id, uuid); errors cut to 2000 characters."""

    async def queue_provisioning_command(
        self, command: NewCommand, rows: Sequence[DeviceProvisioning], now: datetime
    ) -> None:
        """In one transaction: the rows saved (as save_device_provisioning) and `command`
        queued for their devices, so a pass killed between the two (a server killed, its
        lease taken over) leaves no command without its rows for the next pass to send
        again."""

    async def device_provisioning(
        self, *, device_id: str | None = None, uuid: str | None = None
    ) -> list[DeviceProvisioning]:
        """The rows matching every filter given, by UUID then device id."""

    async def provisioning_concerns(self, device_id: str) -> bool:
        """Whether any provisioning profile is assigned, or the device has rows: when
        neither, there is nothing to reconcile for it (one query; every enrollment asks)."""

    async def device_provisioning_by_command(
        self, device_id: str, command_uuid: str
    ) -> DeviceProvisioning | None: ...

    async def provisioning_state_counts(self, uuid: str) -> dict[ProvisioningState, int]:
        """How many devices are in each state for this profile (states with none left out)."""

    async def provisioning_holders(self, uuid: str) -> list[str]:
        """The devices holding the profile, sorted: those where we installed it (state
        installed) and those whose last ProvisioningProfileList named it — an .ipa's
        embedded profile is installed with the app, without any command of ours."""
