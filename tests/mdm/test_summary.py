"""The device presenter: what an inventory says, read the way Apple defines each value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchardist.mdm.summary import summarize
from orchardist.storage.inventory import Certificate, DeviceInventory

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _inventory(
    facts: dict[str, Any] | None = None,
    security: dict[str, Any] | None = None,
    certificates: tuple[Certificate, ...] = (),
) -> DeviceInventory:
    return DeviceInventory(NOW, facts or {}, security or {}, {}, (), certificates, (), ())


@pytest.mark.parametrize(
    ("level", "percent"),
    [(0.42, 42), (1.0, 100), (0.0, 0), (-1.0, None), ("x", None), (True, None)],
)
def test_battery(level: Any, percent: int | None) -> None:
    # Apple: "between 0.0 and 1.0, or -1.0 if MDM can't determine the battery level".
    assert summarize(_inventory({"BatteryLevel": level}), NOW).battery_percent == percent


@pytest.mark.parametrize(
    ("security", "encryption"),
    [
        ({"HardwareEncryptionCaps": 3, "PasscodePresent": True}, "data protection"),
        ({"HardwareEncryptionCaps": 3, "PasscodePresent": False}, "no data protection"),
        ({"HardwareEncryptionCaps": 1, "PasscodePresent": True}, "no data protection"),
        ({"FDE_Enabled": True}, "FileVault"),
        ({"FDE_Enabled": False}, "FileVault off"),
        ({}, None),
    ],
)
def test_encryption(security: dict[str, Any], encryption: str | None) -> None:
    assert summarize(_inventory(security=security), NOW).encryption == encryption


def test_storage_and_passcode() -> None:
    summary = summarize(
        _inventory({"DeviceCapacity": "26.9", "AvailableDeviceCapacity": 15.5},
                   {"PasscodePresent": True, "PasscodeCompliant": False}),
        NOW,
    )  # fmt: skip
    assert (summary.storage_capacity_gb, summary.storage_available_gb) == (26.9, 15.5)
    assert (summary.passcode_present, summary.passcode_compliant) == (True, False)
    empty = summarize(_inventory(), NOW)
    assert (empty.storage_capacity_gb, empty.passcode_present, empty.app_count) == (None, None, 0)


def test_certificates_expiring_within_30_days_soonest_first() -> None:
    def cert(name: str, days: float | None) -> Certificate:
        not_after = None if days is None else NOW + timedelta(days=days)
        return Certificate(name, False, None, not_after)

    certificates = (cert("later", 29.5), cert("gone", -3), cert("fine", 31), cert("unread", None))
    expiring = summarize(_inventory(certificates=certificates), NOW).expiring_certificates
    assert [(c.common_name, c.days_left) for c in expiring] == [("gone", -3), ("later", 29)]
