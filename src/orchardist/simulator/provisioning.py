"""The provisioning profiles a virtual device holds: InstallProvisioningProfile,
RemoveProvisioningProfile and ProvisioningProfileList, and the profile an in-house app
carries (`embedded.mobileprovision`), which iOS installs with the app.

A profile is a CMS SignedData around a plist. The device checks that the signature
verifies over the content (integrity; it cannot check Apple's chain, which a test team
stands in for) and keeps the plist's UUID, Name and ExpirationDate — the three keys
ProvisioningProfileList answers (Apple's profile.provisioning.list.yaml)."""

from __future__ import annotations

import plistlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from orchardist.pki import cms
from orchardist.simulator.refusals import DEVICE_MANAGEMENT, PROFILES, refused

MAX_PROFILE_BYTES = 1 << 20  # real ones are a few KB; more is not read


class ProvisioningReadError(ValueError):
    """Not a provisioning profile a device would install; str(err) says why."""


@dataclass(frozen=True)
class HeldProfile:
    uuid: str
    name: str
    expires_at: datetime | None
    managed: bool  # installed by MDM (a command, or with an app MDM installed)

    def listed(self) -> dict[str, Any]:
        item: dict[str, Any] = {"Name": self.name, "UUID": self.uuid}
        if self.expires_at is not None:
            item["ExpiryDate"] = self.expires_at
        return item


def read_provisioning_profile(data: object, *, managed: bool = True) -> HeldProfile:
    """The profile in `data` (bytes of a .mobileprovision); ProvisioningReadError if the
    bytes are not one, too large, or their signature does not verify."""
    if not isinstance(data, bytes) or not data:
        raise ProvisioningReadError("no profile data")
    if len(data) > MAX_PROFILE_BYTES:
        raise ProvisioningReadError(f"{len(data):,} bytes, more than {MAX_PROFILE_BYTES:,}")
    try:
        content = cms.verify(data).content
        plist = plistlib.loads(content)
    except cms.CmsError as exc:
        raise ProvisioningReadError(f"not a signed profile: {exc}") from exc
    except Exception as exc:  # plistlib raises many types (InvalidFileException, ExpatError…)
        raise ProvisioningReadError(f"its content is not a property list: {exc}") from exc
    uuid = plist.get("UUID") if isinstance(plist, dict) else None
    if not isinstance(uuid, str) or not 0 < len(uuid) <= 64:
        raise ProvisioningReadError("it has no UUID")
    name, expires = plist.get("Name"), plist.get("ExpirationDate")
    return HeldProfile(
        uuid=uuid,
        name=name if isinstance(name, str) else "",
        # plistlib reads dates as naive UTC.
        expires_at=expires.replace(tzinfo=UTC) if isinstance(expires, datetime) else None,
        managed=managed,
    )


def user_installed(now: datetime) -> HeldProfile:
    """The made-up profile a user-installed in-house app brought along (not MDM's)."""
    return HeldProfile(
        uuid="0B6F5F7E-8C55-4E3B-9B7E-1D2C3B4A5F6E",
        name="Example In-House",
        expires_at=now.replace(microsecond=0) + timedelta(days=200),
        managed=False,
    )


class ProvisioningProfiles:
    """One device's provisioning profiles, by UUID, in memory."""

    def __init__(self, held: Iterable[HeldProfile] = ()) -> None:
        self.by_uuid = {profile.uuid: profile for profile in held}

    def add(self, profile: HeldProfile) -> None:
        """Install, replacing a profile with the same UUID (as iOS does)."""
        self.by_uuid[profile.uuid] = profile

    def install(self, command: Mapping[str, Any]) -> dict[str, Any]:
        try:
            self.add(read_provisioning_profile(command.get("ProvisioningProfile")))
        except ProvisioningReadError as exc:
            raise refused(
                DEVICE_MANAGEMENT, 2800, f"Cannot install provisioning profile: {exc}."
            ) from exc
        return {}

    def remove(self, command: Mapping[str, Any]) -> dict[str, Any]:
        # No capture shows what iOS answers for a UUID it does not hold; like RemoveProfile
        # it is refused here, so the server must cope with a profile already gone.
        if self.by_uuid.pop(str(command.get("UUID")), None) is None:
            raise refused(PROFILES, 1003, "The provisioning profile is not installed.")
        return {}

    def listed(self, command: Mapping[str, Any]) -> dict[str, Any]:
        only_managed = command.get("ManagedOnly") is True
        return {
            "ProvisioningProfileList": [
                profile.listed()
                for profile in self.by_uuid.values()
                if profile.managed or not only_managed
            ]
        }
