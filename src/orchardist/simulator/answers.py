"""What a virtual device answers from its facts, shaped after real devices' captures
(`tests/vectors/device-captures`) and the response keys in Apple's schema. What it keeps
as state — profiles, apps, provisioning profiles — is answered by `device` and the
modules it holds (`apps`, `provisioning`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


@dataclass(frozen=True)
class Identity:
    """The facts a virtual device reports about itself."""

    udid: str
    serial_number: str
    device_name: str
    product_name: str  # e.g. iPhone3,1
    model: str  # e.g. MC603
    model_name: str  # e.g. iPhone
    os_version: str
    build_version: str
    imei: str
    wifi_mac: str
    certificate: x509.Certificate
    # Listed after the identity by CertificateList (`library.Stock`): none by default.
    more_certificates: tuple[dict[str, Any], ...] = ()

    def query(self, name: str) -> Any:
        return {
            "UDID": self.udid,
            "SerialNumber": self.serial_number,
            "DeviceName": self.device_name,
            "ProductName": self.product_name,
            "Model": self.model,
            "ModelName": self.model_name,
            "OSVersion": self.os_version,
            "BuildVersion": self.build_version,
            "IMEI": self.imei,
            "WiFiMAC": self.wifi_mac,
            "BluetoothMAC": self.wifi_mac[:-1] + "f",
            "DeviceCapacity": 29.8,
            "AvailableDeviceCapacity": 17.2,
            "BatteryLevel": 0.81,
            "CellularTechnology": 1,
            "IsSupervised": False,
            "IsActivationLockEnabled": False,
            "IsCloudBackupEnabled": True,
            "IsDeviceLocatorServiceEnabled": True,
            "IsDoNotDisturbInEffect": False,
        }.get(name)


Answer = Callable[[Identity, Mapping[str, Any]], dict[str, Any]]


def _device_information(me: Identity, command: Mapping[str, Any]) -> dict[str, Any]:
    answers = {q: me.query(q) for q in command.get("Queries", [])}
    return {"QueryResponses": {k: v for k, v in answers.items() if v is not None}}


def _security_info(me: Identity, command: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "SecurityInfo": {
            "HardwareEncryptionCaps": 3,
            "PasscodePresent": True,
            "PasscodeCompliant": True,
            "PasscodeCompliantWithProfiles": True,
            "PasscodeLockGracePeriodEnforced": 0,
        }
    }


def _certificates(me: Identity, command: Mapping[str, Any]) -> dict[str, Any]:
    name = me.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return {
        "CertificateList": [
            {
                "CommonName": str(name[0].value) if name else me.udid,
                "Data": me.certificate.public_bytes(Encoding.DER),
                "IsIdentity": True,
            },
            *me.more_certificates,
        ]
    }


def _profiles(me: Identity, command: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ProfileList": [
            {
                "PayloadIdentifier": "org.orchardist.enrollment",
                "PayloadDisplayName": "Device management",
                "PayloadUUID": "5C0A7E9C-9B0F-4E6C-8F3A-0D1E2F3A4B5C",
                "PayloadVersion": 1,
                "PayloadRemovalDisallowed": False,
                "IsEncrypted": False,
                "IsManaged": True,
                "PayloadContent": [
                    {
                        "PayloadType": "com.apple.mdm",
                        "PayloadIdentifier": "org.orchardist.enrollment.mdm",
                        "PayloadVersion": 1,
                        "PayloadDisplayName": "Device management",
                    },
                ],
            }
        ]
    }


def _restrictions(me: Identity, command: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "GlobalRestrictions": {
            "restrictedBool": {
                "allowCamera": {"value": True},
                "forceEncryptedBackup": {"value": False},
            },
            "restrictedValue": {"maxInactivity": {"value": 300}},
        },
        "ProfileRestrictions": {},
    }


ANSWERS: dict[str, Answer] = {
    "DeviceInformation": _device_information,
    "SecurityInfo": _security_info,
    "CertificateList": _certificates,
    "ProfileList": _profiles,
    "Restrictions": _restrictions,
}


def answer(me: Identity, command: Mapping[str, Any]) -> dict[str, Any]:
    """The result keys for a command (beyond Status, UDID, CommandUUID)."""
    handler = ANSWERS.get(str(command.get("RequestType")))
    if handler is not None:
        return handler(me, command)
    if command.get("RequestType") == "DeviceLock" and (
        command.get("Message") or command.get("PhoneNumber")
    ):
        return {"MessageResult": "Success"}
    return {}
