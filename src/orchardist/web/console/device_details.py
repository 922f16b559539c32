"""What a device's console page shows besides its list fields: who enrolled it and its
groups, its push state, hardware and network facts from DeviceInformation, restrictions in
force, and command answers as readable plists with the secrets a role may not see hidden.

Key names are Apple's (DeviceInformation's QueryResponses, as the schema in
tests/vectors/apple-device-management/mdm/commands/information.device.yaml has them); a
fact the device never reported is left out rather than shown empty."""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchardist.accounts.permissions import Role, without_secrets
from orchardist.plists import PlistError, load_dictionary
from orchardist.storage import Enrollment
from orchardist.storage.inventory import DeviceInventory

HARDWARE = (
    ("Model number", "ModelNumber"),
    ("Capacity (GB)", "DeviceCapacity"),
    ("Modem firmware", "ModemFirmwareVersion"),
    ("Supervised", "IsSupervised"),
    ("Activation Lock", "IsActivationLockEnabled"),
    ("Find My", "IsDeviceLocatorServiceEnabled"),
    ("Lost Mode", "IsMDMLostModeEnabled"),
    ("iCloud backup", "IsCloudBackupEnabled"),
    ("Last iCloud backup", "LastCloudBackupDate"),
    ("Time zone", "TimeZone"),
)
NETWORK = (
    ("Wi-Fi MAC", "WiFiMAC"),
    ("Bluetooth MAC", "BluetoothMAC"),
    ("Ethernet MAC", "EthernetMAC"),
    ("Phone number", "PhoneNumber"),
    ("IMEI", "IMEI"),
    ("MEID", "MEID"),
    ("ICCID", "ICCID"),
    ("Carrier", "CurrentCarrierNetwork"),
    ("Home carrier", "SubscriberCarrierNetwork"),
    ("Cellular technology", "CellularTechnology"),
    ("Roaming", "IsRoaming"),
    ("Data roaming", "DataRoamingEnabled"),
    ("Voice roaming", "VoiceRoamingEnabled"),
    ("Personal Hotspot", "PersonalHotspotEnabled"),
)
_CELLULAR = {0: "none", 1: "GSM", 2: "CDMA", 3: "GSM and CDMA"}


@dataclass(frozen=True)
class PushState:
    token: bool  # the device sent a push token (TokenUpdate)
    invalid_at: datetime | None  # APNs said the token is no longer valid
    pushed_at: datetime | None
    topic: str | None

    @property
    def words(self) -> str:
        if not self.token:
            return "no push token yet: the device has not sent TokenUpdate"
        if self.invalid_at is not None:
            return f"push token refused by APNs on {self.invalid_at:%Y-%m-%d %H:%M}"
        return "reachable by push"


def push_state(enrollment: Enrollment) -> PushState:
    return PushState(
        token=enrollment.token is not None,
        invalid_at=enrollment.token_invalid_at,
        pushed_at=enrollment.pushed_at,
        topic=enrollment.facts.topic,
    )


def facts_table(
    inventory: DeviceInventory | None, wanted: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(label, text) for each wanted fact the device reported."""
    if inventory is None:
        return []
    rows = []
    for label, key in wanted:
        if key in inventory.facts:
            rows.append((label, _text(key, inventory.facts[key])))
    return rows


def restrictions_table(inventory: DeviceInventory | None) -> list[tuple[str, str]]:
    """The restrictions in force (Restrictions query's GlobalRestrictions), one row a key:
    booleans as allowed / not allowed, values and unions as text."""
    if inventory is None:
        return []
    rows: list[tuple[str, str]] = []
    global_ = inventory.restrictions.get("GlobalRestrictions", inventory.restrictions)
    if not isinstance(global_, Mapping):
        return rows
    for kind in ("restrictedBool", "restrictedValue", "intersection", "union"):
        entries = global_.get(kind)
        if not isinstance(entries, Mapping):
            continue
        for key, entry in sorted(entries.items()):
            value = entry.get("value", entry.get("values")) if isinstance(entry, Mapping) else entry
            if kind == "restrictedBool" and isinstance(value, bool):
                rows.append((str(key), "allowed" if value else "not allowed"))
            else:
                rows.append((str(key), _text(str(key), value)))
    return rows


def readable_result(result: bytes | None, role: Role) -> str | None:
    """The device's answer as an XML plist for a <details> on a page, secrets hidden from a
    role that may not see them (an UnlockToken, a BootstrapToken…), as the API hides them."""
    if result is None:
        return None
    try:  # bounded: one stored before the parser limited depth must not break the page
        answer = load_dictionary(result)
    except PlistError:
        return "(unreadable)"
    try:
        return plistlib.dumps(without_secrets(answer, role)).decode("utf-8", "replace")
    except (TypeError, ValueError, OverflowError):
        return "(unreadable)"


def _text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "CellularTechnology" and value in _CELLULAR:
        return _CELLULAR[value]
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(key, item) for item in value)
    if isinstance(value, bytes):
        return f"({len(value)} bytes)"
    return str(value)
