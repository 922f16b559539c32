"""Query results → inventory: what a device reports, as records the server can search.

Shapes follow real devices' answers (`tests/vectors/device-captures`): DeviceInformation's
QueryResponses, SecurityInfo, InstalledApplicationList, CertificateList (DER data, from
which the expiry date is read), ProfileList, ProvisioningProfileList (ExpiryDate) and
Restrictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from orchardist.schema.jsonvalues import to_json
from orchardist.storage.inventory import (
    App,
    Certificate,
    InventoryUpdate,
    Profile,
    ProvisioningProfile,
)


def inventory_from(request_type: str, result: Mapping[str, Any]) -> InventoryUpdate | None:
    """The inventory in a query's result, or None when this RequestType carries none."""
    reader = READERS.get(request_type)
    return None if reader is None else reader(result)


def stored_inventory(request_type: str, result: Mapping[str, Any]) -> InventoryUpdate | None:
    """inventory_from, its dictionaries made JSON-ready as storage keeps them (data as
    base64, dates as ISO 8601)."""
    update = inventory_from(request_type, result)
    if update is None:
        return None
    return dataclasses.replace(
        update,
        facts=None if update.facts is None else to_json(update.facts),
        security=None if update.security is None else to_json(update.security),
        restrictions=None if update.restrictions is None else to_json(update.restrictions),
    )


def _facts(result: Mapping[str, Any]) -> InventoryUpdate:
    return InventoryUpdate(facts=_dict(result.get("QueryResponses")))


def _security(result: Mapping[str, Any]) -> InventoryUpdate:
    return InventoryUpdate(security=_dict(result.get("SecurityInfo")))


def _restrictions(result: Mapping[str, Any]) -> InventoryUpdate:
    keys = ("GlobalRestrictions", "ProfileRestrictions")
    return InventoryUpdate(restrictions={k: result[k] for k in keys if k in result})


def _apps(result: Mapping[str, Any]) -> InventoryUpdate:
    apps = tuple(
        App(
            identifier=item["Identifier"],
            name=_str(item.get("Name")),
            version=_str(item.get("Version")),
            short_version=_str(item.get("ShortVersion")),
            bundle_size=_size(item.get("BundleSize")),
        )
        for item in _keyed(result.get("InstalledApplicationList"), "Identifier", 255)
    )
    return InventoryUpdate(apps=apps)


def _certificates(result: Mapping[str, Any]) -> InventoryUpdate:
    found, problems = [], []
    for item in _items(result.get("CertificateList")):
        data = item.get("Data")
        sha256 = not_after = None
        if isinstance(data, bytes):
            sha256 = hashlib.sha256(data).hexdigest()
            try:
                not_after = x509.load_der_x509_certificate(data).not_valid_after_utc
            except ValueError as exc:
                problems.append(f"certificate {item.get('CommonName')!r}: {exc}")
        found.append(
            Certificate(
                _str(item.get("CommonName")), bool(item.get("IsIdentity")), sha256, not_after
            )
        )
    return InventoryUpdate(certificates=tuple(found), problems=tuple(problems))


def _profiles(result: Mapping[str, Any]) -> InventoryUpdate:
    profiles = tuple(
        Profile(
            identifier=item["PayloadIdentifier"],
            display_name=_str(item.get("PayloadDisplayName")),
            uuid=_str(item.get("PayloadUUID")),
            is_managed=bool(item.get("IsManaged", False)),
        )
        for item in _keyed(result.get("ProfileList"), "PayloadIdentifier", 255)
    )
    return InventoryUpdate(profiles=profiles)


def _provisioning(result: Mapping[str, Any]) -> InventoryUpdate:
    profiles = tuple(
        ProvisioningProfile(
            uuid=item["UUID"],
            name=_str(item.get("Name")),
            expires_at=_utc(item.get("ExpiryDate")),
        )
        for item in _keyed(result.get("ProvisioningProfileList"), "UUID", 64)
    )
    return InventoryUpdate(provisioning_profiles=profiles)


READERS = {
    "DeviceInformation": _facts,
    "SecurityInfo": _security,
    "Restrictions": _restrictions,
    "InstalledApplicationList": _apps,
    "CertificateList": _certificates,
    "ProfileList": _profiles,
    "ProvisioningProfileList": _provisioning,
}


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _keyed(value: Any, key: str, longest: int) -> list[dict[str, Any]]:
    """The items of a list that storage keeps one row per `key` for: those whose key is a
    string that fits (longer is no real bundle ID or UUID, and cutting it could make two
    equal), a repeated key keeping its last item."""
    keyed = {
        item[key]: item
        for item in _items(value)
        if isinstance(item.get(key), str) and 0 < len(item[key]) <= longest
    }
    return list(keyed.values())


# Storage holds sizes as signed 64-bit integers; a plist may carry up to 2^64 - 1. A larger
# size is clamped, not dropped: "at least 8 EiB" is as true as a device's answer gets.
MAX_SIZE = 2**63 - 1


def _size(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return min(value, MAX_SIZE)


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    # plistlib returns naive datetimes that are UTC by the plist format's definition.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
