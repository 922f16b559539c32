"""Valid device messages the mutation tests start from, shaped like real devices' answers
(tests/vectors/device-captures): one command result per RequestType the server reads
something from, and one check-in per MessageType."""

from __future__ import annotations

from datetime import datetime
from typing import Any

TOPIC = "com.apple.mgmt.t"
_ERROR = {
    "ErrorChain": [
        {
            "ErrorCode": 4001,
            "ErrorDomain": "MCProfileErrorDomain",
            "LocalizedDescription": "The profile could not be installed.",
            "USEnglishDescription": "The profile could not be installed.",
        }
    ]
}
_FACTS = {
    "DeviceName": "Kim's iPhone",
    "OSVersion": "18.1",
    "SerialNumber": "C02XK0AAJG5J",
    "Model": "MQ9X3",
    "ModelName": "iPhone",
    "ProductName": "iPhone15,2",
    "BuildVersion": "22B83",
    "IMEI": "35 391108 123456 7",
    "MEID": "35391108123456",
    "DeviceCapacity": 119.09,
    "IsSupervised": False,
}
_APPS = [
    {
        "Identifier": "com.example.mail",
        "Name": "Mail",
        "Version": "2.1",
        "ShortVersion": "2.1",
        "BundleSize": 4096,
    },
    {"Identifier": "com.example.maps", "Name": "Maps", "BundleSize": 2**40},
]
_PROFILES = [
    {
        "PayloadIdentifier": "com.example.wifi",
        "PayloadUUID": "9A1E7B5C-2F4D-4C8B-9E0A-1B2C3D4E5F60",
        "PayloadDisplayName": "Office Wi-Fi",
        "IsManaged": True,
        "PayloadVersion": 1,
        "PayloadContent": [
            {"PayloadType": "com.apple.wifi.managed", "PayloadIdentifier": "com.example.wifi.1"}
        ],
    }
]


def command_results(certificate: bytes) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """RequestType → (the command's parameters, the device's answer without envelope)."""
    return {
        "DeviceInformation": ({"Queries": list(_FACTS)}, {"QueryResponses": _FACTS}),
        "SecurityInfo": (
            {},
            {
                "SecurityInfo": {
                    "HardwareEncryptionCaps": 3,
                    "PasscodePresent": True,
                    "PasscodeCompliant": True,
                }
            },
        ),
        "InstalledApplicationList": ({}, {"InstalledApplicationList": _APPS}),
        "CertificateList": (
            {},
            {
                "CertificateList": [
                    {"CommonName": "Orchardist CA", "IsIdentity": False, "Data": certificate}
                ]
            },
        ),
        "ProfileList": ({}, {"ProfileList": _PROFILES}),
        "ProvisioningProfileList": (
            {},
            {
                "ProvisioningProfileList": [
                    {
                        "Name": "In-house",
                        "UUID": "1234-5678",
                        "ExpiryDate": datetime(2030, 1, 2, 3, 4, 5),
                    }
                ]
            },
        ),
        "Restrictions": (
            {},
            {
                "GlobalRestrictions": {"restrictedBool": {"allowCamera": {"value": False}}},
                "ProfileRestrictions": {},
            },
        ),
        "DeviceLock": ({}, {"MessageResult": "Success"}),
        "InstallProfile": ({"Payload": b"<plist/>"}, _ERROR),
        "RemoveProfile": ({"Identifier": "com.example.wifi"}, _ERROR),
    }


def checkins(udid: str) -> list[dict[str, Any]]:
    def message(kind: str, **fields: Any) -> dict[str, Any]:
        return {"MessageType": kind, "UDID": udid, "Topic": TOPIC, **fields}

    facts = {key: value for key, value in _FACTS.items() if isinstance(value, str)}
    return [
        message("Authenticate", **facts),
        message(
            "TokenUpdate",
            Token=b"\x01" * 32,
            PushMagic="M",
            UnlockToken=b"U",
            AwaitingConfiguration=False,
        ),
        message("CheckOut"),
        message("SetBootstrapToken", BootstrapToken=b"boot"),
        message("GetBootstrapToken"),
        message("UserAuthenticate", UserID="u", DigestResponse="d"),
        message("DeclarativeManagement", Endpoint="tokens", Data=b"{}"),
        message("GetToken", TokenServiceType="com.apple.maid"),
    ]


OTA_ATTRIBUTES = {
    "CHALLENGE": "c" * 32,
    "IMEI": "35 391108 123456 7",
    "VERSION": "22B83",
    "PRODUCT": "iPhone15,2",
    "SERIAL": "C02XK0AAJG5J",
    "DEVICE_NAME": "Kim's iPhone",
}
