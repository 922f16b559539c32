"""Friendly names for the commands an admin sends most: the parameters they need, nothing
to look up. Each returns (RequestType, params) for `dispatch.queue_command`."""

from __future__ import annotations

from typing import Any

Built = tuple[str, dict[str, Any]]

# What `device query info` asks for: identity, OS, hardware and network basics that iOS 4
# and later answer (Apple, "DeviceInformation"; unknown queries are simply not answered).
DEVICE_INFORMATION_QUERIES = (
    "UDID", "DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName",
    "SerialNumber", "DeviceCapacity", "AvailableDeviceCapacity", "BatteryLevel", "IMEI", "MEID",
    "ICCID", "PhoneNumber", "CellularTechnology", "WiFiMAC", "BluetoothMAC", "IsSupervised",
    "IsActivationLockEnabled", "IsCloudBackupEnabled", "IsDeviceLocatorServiceEnabled",
    "IsDoNotDisturbInEffect",
)  # fmt: skip

QUERIES: dict[str, Built] = {
    "info": ("DeviceInformation", {"Queries": list(DEVICE_INFORMATION_QUERIES)}),
    "security": ("SecurityInfo", {}),
    "apps": ("InstalledApplicationList", {}),
    "certificates": ("CertificateList", {}),
    "profiles": ("ProfileList", {}),
    "provisioning-profiles": ("ProvisioningProfileList", {}),
    "restrictions": ("Restrictions", {}),
}

# What `device query UDID` (no WHAT) asks for: everything `device show` summarises.
INVENTORY = ("info", "security", "apps", "certificates", "profiles")


def with_defaults(request_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` with what the admin left out filled in: DeviceInformation without Queries
    asks for the usual list (Apple requires Queries, and an empty list returns nothing)."""
    if request_type == "DeviceInformation" and "Queries" not in params:
        return {**params, "Queries": list(DEVICE_INFORMATION_QUERIES)}
    return params


def device_lock(message: str | None = None, phone_number: str | None = None) -> Built:
    params: dict[str, Any] = {}
    if message:
        params["Message"] = message
    if phone_number:
        params["PhoneNumber"] = phone_number
    return "DeviceLock", params


def erase_device(pin: str | None = None, preserve_data_plan: bool | None = None) -> Built:
    params: dict[str, Any] = {}
    if pin:
        params["PIN"] = pin  # macOS Find My PIN; iOS ignores it
    if preserve_data_plan is not None:
        params["PreserveDataPlan"] = preserve_data_plan
    return "EraseDevice", params


def clear_passcode(unlock_token: bytes) -> Built:
    """Needs the UnlockToken the device sent in its TokenUpdate."""
    return "ClearPasscode", {"UnlockToken": unlock_token}


def install_profile(payload: bytes) -> Built:
    return "InstallProfile", {"Payload": payload}


def remove_profile(identifier: str) -> Built:
    return "RemoveProfile", {"Identifier": identifier}


def install_provisioning_profile(profile: bytes) -> Built:
    return "InstallProvisioningProfile", {"ProvisioningProfile": profile}


def remove_provisioning_profile(uuid: str) -> Built:
    return "RemoveProvisioningProfile", {"UUID": uuid}


def settings(*items: dict[str, Any]) -> Built:
    """Settings items such as {"Item": "DataRoaming", "Enabled": False}."""
    return "Settings", {"Settings": list(items)}
