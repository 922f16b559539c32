"""What an admin reads about a device: one presenter for the CLI, the API and the console,
so the three never disagree.

The summary is read from the inventory the device last reported (DeviceInformation,
SecurityInfo, InstalledApplicationList, CertificateList); a value the device never reported
is None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from orchardist.storage import Enrollment
from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance
from orchardist.storage.inventory import DeviceInventory

# Certificates expiring this soon are listed (expired ones too): time to renew them.
EXPIRY_WARNING = timedelta(days=30)
# A device's reason before its first evaluation (it enrolled a moment ago).
NOT_EVALUATED = "not evaluated yet"


@dataclass(frozen=True)
class ExpiringCertificate:
    common_name: str | None
    not_after: datetime
    days_left: int  # negative once expired


@dataclass(frozen=True)
class DeviceSummary:
    inventory_updated_at: datetime
    battery_percent: int | None  # None: not reported, or the device cannot tell (-1.0)
    storage_capacity_gb: float | None
    storage_available_gb: float | None
    passcode_present: bool | None
    passcode_compliant: bool | None
    encryption: str | None  # "data protection", "FileVault", "FileVault off", "no data protection"
    # 0 also before the device's first InstalledApplicationList: the store keeps no
    # difference between "no apps" and "never asked" (the CLI says "none reported").
    app_count: int
    expiring_certificates: tuple[ExpiringCertificate, ...]


def device_fields(
    enrollment: Enrollment, compliance: DeviceCompliance | None = None
) -> dict[str, Any]:
    """One device as a row: what `device list`, GET /api/v1/devices, its CSV export and the
    console show. `compliance` is its stored verdict (None: not evaluated yet)."""
    facts = enrollment.facts
    return {
        "udid": facts.device_id,
        "serial_number": facts.serial_number,
        "model": facts.model,
        "model_name": facts.model_name,
        "product_name": facts.product_name,
        "os_version": facts.os_version,
        "build_version": facts.build_version,
        "device_name": facts.device_name,
        "enrolled": enrollment.enrolled,
        "state": enrollment.state,
        "enrolled_at": enrollment.enrolled_at,
        "last_seen_at": enrollment.last_seen_at,
        "compliance": compliance_fields(compliance),
    }


def compliance_fields(verdict: DeviceCompliance | None) -> dict[str, Any]:
    """status (compliant, non_compliant, unknown), reasons, evaluated_at."""
    if verdict is None:
        return {"status": ComplianceStatus.UNKNOWN.value, "reasons": [NOT_EVALUATED],
                "evaluated_at": None}  # fmt: skip
    return {"status": verdict.status.value, "reasons": list(verdict.reasons),
            "evaluated_at": verdict.evaluated_at}  # fmt: skip


def summarize(inventory: DeviceInventory, now: datetime) -> DeviceSummary:
    facts, security = inventory.facts, inventory.security
    return DeviceSummary(
        inventory_updated_at=inventory.updated_at,
        battery_percent=_battery(facts.get("BatteryLevel")),
        storage_capacity_gb=_number(facts.get("DeviceCapacity")),
        storage_available_gb=_number(facts.get("AvailableDeviceCapacity")),
        passcode_present=_flag(security.get("PasscodePresent")),
        passcode_compliant=_flag(security.get("PasscodeCompliant")),
        encryption=encryption(security),
        app_count=len(inventory.apps),
        expiring_certificates=_expiring(inventory, now),
    )


def _battery(level: Any) -> int | None:
    # Apple, DeviceInformation: "between 0.0 and 1.0, or -1.0 if MDM can't determine" it.
    number = _number(level)
    return None if number is None or not 0 <= number <= 1 else round(number * 100)


def encryption(security: Any) -> str | None:
    """How SecurityInfo says the device's data is protected (see DeviceSummary.encryption);
    None when it does not say. Compliance's data protection rule reads it too."""
    if "FDE_Enabled" in security:  # macOS
        return "FileVault" if security["FDE_Enabled"] is True else "FileVault off"
    caps = security.get("HardwareEncryptionCaps")
    if not isinstance(caps, int) or isinstance(caps, bool):
        return None
    # Apple, SecurityInfo: "For a device to have data protection, HardwareEncryptionCaps
    # must be 3 and PasscodePresent must be true".
    protected = caps == 3 and security.get("PasscodePresent") is True
    return "data protection" if protected else "no data protection"


def _expiring(inventory: DeviceInventory, now: datetime) -> tuple[ExpiringCertificate, ...]:
    soon = [
        ExpiringCertificate(c.common_name, c.not_after, (c.not_after - now).days)
        for c in inventory.certificates
        if c.not_after is not None and c.not_after - now <= EXPIRY_WARNING
    ]
    return tuple(sorted(soon, key=lambda c: c.not_after))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)  # DeviceCapacity was a string in early iOS answers
    except ValueError:
        return None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
