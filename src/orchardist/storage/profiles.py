"""The profile library's records and store (see `orchardist.profiles.library`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # orchardist.storage imports this module
    from orchardist.storage import NewCommand


class TargetKind(enum.StrEnum):
    DEVICE = "device"
    GROUP = "group"
    ALL = "all"  # every enrolled device; target ""


class ProfileState(enum.StrEnum):
    PENDING = "pending"  # InstallProfile queued, not answered yet
    INSTALLED = "installed"
    FAILED = "failed"  # the device refused it; `error` says why
    MISSING = "missing"  # installed once, absent from the device's ProfileList now
    REMOVING = "removing"  # RemoveProfile queued
    REMOVED = "removed"


@dataclass(frozen=True)
class ProfileVersion:
    identifier: str
    version: int
    display_name: str
    payload_types: tuple[str, ...]
    body: bytes  # the unsigned profile plist (secrets included: the database is secret)
    created_at: datetime


@dataclass(frozen=True)
class StoredProfile:
    identifier: str
    display_name: str
    latest_version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Assignment:
    identifier: str
    kind: TargetKind
    target: str


@dataclass(frozen=True)
class DeviceProfile:
    device_id: str
    identifier: str
    desired_version: int | None  # None: to be removed
    installed_version: int | None
    state: ProfileState
    command_uuid: str | None
    error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class DevicePlan:
    """What reconciling one device reads (ProfileStore.device_plan)."""

    enrolled: bool
    wanted: Mapping[str, int]  # identifier → latest version assigned to it; empty unless enrolled
    rows: Sequence[DeviceProfile]  # its states, by identifier
    identity_der: bytes | None  # the identity certificate it is bound to, when ours


class ProfileStore(Protocol):
    async def add_profile_version(
        self,
        identifier: str,
        display_name: str,
        payload_types: Sequence[str],
        body: bytes,
        now: datetime,
    ) -> ProfileVersion:
        """Store a new version (1 for a new identifier)."""

    async def list_profiles(self) -> list[StoredProfile]:
        """Every profile not deleted, by identifier."""

    async def get_profile(self, identifier: str) -> StoredProfile | None: ...

    async def profile_version(
        self, identifier: str, version: int | None = None
    ) -> ProfileVersion | None:
        """A version (the latest with None)."""

    async def profile_versions(self, identifier: str) -> list[ProfileVersion]: ...

    async def delete_profile(self, identifier: str) -> bool:
        """Forget its assignments and hide it; devices still get RemoveProfile."""

    async def set_assignments(
        self, identifier: str, kind: TargetKind, targets: Sequence[str], *, assigned: bool
    ) -> None:
        """Add (or, with assigned=False, remove) assignments."""

    async def assignments(self, identifier: str | None = None) -> list[Assignment]: ...

    async def set_group(self, name: str, device_ids: Sequence[str]) -> None:
        """Create or replace a static group."""

    async def add_to_groups(self, device_id: str, names: Sequence[str]) -> None:
        """Make the device a member of these groups (kept if it is one already)."""

    async def groups(self) -> Mapping[str, list[str]]:
        """Every group and its members."""

    async def group_sizes(self) -> Mapping[str, int]:
        """Every group and how many members it has (without reading the members)."""

    async def groups_of(self, device_id: str) -> list[str]:
        """The names of the groups the device is a member of, sorted."""

    async def device_profiles(
        self, *, device_id: str | None = None, identifier: str | None = None
    ) -> list[DeviceProfile]: ...

    async def save_device_profiles(self, rows: Sequence[DeviceProfile]) -> None:
        """Upsert by (device_id, identifier)."""

    async def queue_profile_command(
        self,
        command: NewCommand,
        rows: Sequence[DeviceProfile],
        seen: Mapping[str, str | None],
        now: datetime,
    ) -> list[DeviceProfile]:
        """In one transaction: each row saved, unless the device's stored row for it has
        moved since it was read (`seen`: device → the command_uuid read, None for no row),
        and `command` queued for the devices whose row was saved; those rows returned. A
        pass killed mid-way leaves no command without its row, nor a row without its
        command, and two passes at once do not both queue."""

    async def device_plan(self, device_id: str) -> DevicePlan:
        """In one read: whether the device is enrolled, the latest version of every profile
        assigned to it (directly, through its groups, to all; deleted ones not), its
        states, and its identity certificate. Every TokenUpdate reconciles one device."""

    async def device_profile_by_command(
        self, device_id: str, command_uuid: str
    ) -> DeviceProfile | None: ...
