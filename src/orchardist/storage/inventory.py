"""Inventory records: what devices report about themselves (see `orchardist.mdm.inventory`)."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class App:
    identifier: str
    name: str | None
    version: str | None
    short_version: str | None
    bundle_size: int | None


@dataclass(frozen=True)
class Certificate:
    common_name: str | None
    is_identity: bool
    sha256: str | None
    not_after: datetime | None  # None when the data could not be read


@dataclass(frozen=True)
class Profile:
    identifier: str
    display_name: str | None
    uuid: str | None
    is_managed: bool


@dataclass(frozen=True)
class ProvisioningProfile:
    uuid: str
    name: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class InventoryUpdate:
    """What one result says; None means "this result says nothing about it"."""

    facts: Mapping[str, Any] | None = None  # DeviceInformation QueryResponses
    security: Mapping[str, Any] | None = None
    restrictions: Mapping[str, Any] | None = None
    apps: tuple[App, ...] | None = None
    certificates: tuple[Certificate, ...] | None = None
    profiles: tuple[Profile, ...] | None = None
    provisioning_profiles: tuple[ProvisioningProfile, ...] | None = None
    problems: tuple[str, ...] = field(default=())  # items skipped, and why

    def list_digest(self, name: str) -> str | None:
        """`list_digest` of the list `name` (one of LISTS); None when the result says
        nothing of it."""
        items = getattr(self, name)
        return None if items is None else list_digest(items)

    def listed(self) -> int:
        """How many apps, certificates and profiles it lists."""
        return sum(len(items or ()) for items in (self.apps, self.certificates, self.profiles))


# InventoryUpdate's lists, each stored whole (a new list replaces the old one).
LISTS = ("apps", "certificates", "profiles", "provisioning_profiles")


def list_digest(items: tuple[Any, ...]) -> str:
    """What a list holds, as a SHA-256 of its records' values in order: equal lists, equal
    digests. Storage rewrites a device's list only when it changed; a different pickle of
    equal values (say across Python versions) only costs one rewrite, never a skipped one."""
    values = [tuple(vars(item).values()) for item in items]
    return hashlib.sha256(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()


@dataclass(frozen=True)
class DeviceInventory:
    updated_at: datetime
    facts: Mapping[str, Any]  # every DeviceInformation key ever reported, latest value
    security: Mapping[str, Any]
    restrictions: Mapping[str, Any]
    apps: tuple[App, ...]
    certificates: tuple[Certificate, ...]
    profiles: tuple[Profile, ...]
    provisioning_profiles: tuple[ProvisioningProfile, ...]
    facts_seen_at: Mapping[str, datetime] = field(default_factory=dict)  # per key of facts


class InventoryStore(Protocol):
    async def apply_inventory(self, device_id: str, update: InventoryUpdate, now: datetime) -> None:
        """Replace what `update` speaks about (a list replaces the whole list); keep the rest.
        Facts merge instead, key by key, each key stamped with `now`: a DeviceInformation
        answer names only the keys it was asked for. JSON-ready values only in the
        dictionaries (see schema.jsonvalues.to_json)."""

    async def get_inventory(self, device_id: str) -> DeviceInventory | None:
        """Everything known, or None when the device never answered a query."""
