"""Each friendly payload type: a spec builds, validates against Apple's schema, `openssl cms
-verify` accepts the signed profile, and `openssl cms -decrypt` with the device's key gives
back the payloads."""

from __future__ import annotations

import plistlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.profiles import envelope
from orchardist.profiles.builders import FRIENDLY
from orchardist.profiles.spec import build_profile
from orchardist.profiles.validate import check_profile
from orchardist.scep.client import make_csr
from tests.keys import rsa_key

OPENSSL = "/usr/bin/openssl"
ENV = {"SECRET": "correct horse battery staple", "P12_PASSWORD": "p12-secret"}

SPECS: dict[str, list[dict[str, Any]]] = {
    "passcode": [{"minLength": 6, "requireAlphanumeric": True, "maxFailedAttempts": 10}],
    "restrictions": [{"allowCamera": False, "allowScreenShot": False}],
    "wifi": [
        {"SSID_STR": "Office", "EncryptionType": "WPA2", "Password": {"env": "SECRET"}},
        {
            "SSID_STR": "Corp",
            "EncryptionType": "WPA2",
            "EAPClientConfiguration": {
                "AcceptEAPTypes": [25],
                "UserName": "alice",
                "UserPassword": {"env": "SECRET"},
                "TTLSInnerAuthentication": "MSCHAPv2",
            },
        },
    ],
    "vpn": [
        {
            "UserDefinedName": "Cisco",
            "VPNType": "IPSec",
            "IPSec": {
                "RemoteAddress": "vpn.example.com",
                "AuthenticationMethod": "SharedSecret",
                "SharedSecret": {"file": "shared-secret.bin"},
                "XAuthEnabled": 1,
                "XAuthName": "alice",
            },
        },
        {
            "UserDefinedName": "L2TP",
            "VPNType": "L2TP",
            "PPP": {
                "CommRemoteAddress": "l2tp.example.com",
                "AuthName": "alice",
                "AuthPassword": {"env": "SECRET"},
            },
            "IPSec": {
                "AuthenticationMethod": "SharedSecret",
                "SharedSecret": {"file": "shared-secret.bin"},
            },
        },
        {
            "UserDefinedName": "IKEv2",
            "VPNType": "IKEv2",
            "IKEv2": {
                "RemoteAddress": "ikev2.example.com",
                "RemoteIdentifier": "ikev2.example.com",
                "LocalIdentifier": "alice@example.com",
                "AuthenticationMethod": "SharedSecret",
                "SharedSecret": {"env": "SECRET"},
            },
        },
    ],
    "mail": [
        {
            "EmailAccountType": "EmailTypeIMAP",
            "EmailAddress": "alice@example.com",
            "IncomingMailServerAuthentication": "EmailAuthPassword",
            "IncomingMailServerHostName": "imap.example.com",
            "IncomingMailServerPortNumber": 993,
            "IncomingMailServerUseSSL": True,
            "IncomingMailServerUsername": "alice",
            "IncomingPassword": {"env": "SECRET"},
            "OutgoingMailServerAuthentication": "EmailAuthPassword",
            "OutgoingMailServerHostName": "smtp.example.com",
            "OutgoingPasswordSameAsIncomingPassword": True,
        },
        {
            "EmailAccountType": "EmailTypePOP",
            "IncomingMailServerAuthentication": "EmailAuthPassword",
            "IncomingMailServerHostName": "pop.example.com",
            "OutgoingMailServerAuthentication": "EmailAuthNone",
            "OutgoingMailServerHostName": "smtp.example.com",
        },
    ],
    "exchange": [
        {
            "Host": "mail.example.com",
            "EmailAddress": "alice@example.com",
            "UserName": "alice",
            "Password": {"env": "SECRET"},
        },
    ],
    "ldap": [
        {
            "LDAPAccountHostName": "ldap.example.com",
            "LDAPAccountUserName": "uid=alice,ou=people,dc=example,dc=com",
            "LDAPAccountPassword": {"env": "SECRET"},
            "LDAPSearchSettings": [
                {
                    "LDAPSearchSettingSearchBase": "ou=people,dc=example,dc=com",
                    "LDAPSearchSettingScope": "LDAPSearchSettingScopeSubtree",
                },
            ],
        },
    ],
    "caldav": [
        {
            "CalDAVHostName": "cal.example.com",
            "CalDAVUsername": "alice",
            "CalDAVPassword": {"env": "SECRET"},
        }
    ],
    "subscribed-calendar": [{"SubCalAccountHostName": "https://cal.example.com/holidays.ics"}],
    "webclip": [{"URL": "https://intranet.example.com", "Label": "Intranet"}],
    "certificate": [{"PayloadContent": {"file": "ca.pem"}, "PayloadCertificateFileName": "ca.cer"}],
    "root-certificate": [{"PayloadContent": {"file": "ca.pem"}}],
    "pkcs12": [{"PayloadContent": {"file": "identity.p12"}, "Password": {"env": "P12_PASSWORD"}}],
    "scep": [
        {
            "PayloadContent": {
                "URL": "https://mdm.example.com/scep",
                "Name": "Orchardist",
                "Subject": [[["CN", "alice-iphone"]]],
                "Challenge": {"env": "SECRET"},
                "Keysize": 2048,
                "Key Type": "RSA",
                "Key Usage": 5,
            }
        }
    ],
    "apn": [{"name": "internet.example", "username": "user", "password": {"env": "SECRET"}}],
    "cellular": [{"APNs": [{"Name": "internet.example", "AuthenticationType": "PAP"}]}],
    "mdm": [
        {
            "IdentityCertificateUUID": "00000000-0000-0000-0000-000000000001",
            "Topic": "com.apple.mgmt.External.0b7c3c52-8d8c-4f0e-9a35-2b1a4f6c1d20",
            "ServerURL": "https://mdm.example.com/mdm/connect",
            "CheckInURL": "https://mdm.example.com/mdm/checkin",
            "AccessRights": 8191,
        }
    ],
    "removal-password": [{"RemovalPassword": {"env": "SECRET"}}],
}


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CA, the server's signing certificate, a device identity, and the files specs use."""
    base = tmp_path_factory.mktemp("profiles")
    ca = CertificateAuthority(*generate_ca("Profiles Test CA", "Orchardist tests"))
    server_cert, server_key = ca.issue_server_certificate("mdm.example.com")
    device_key = rsa_key(150)
    device_cert = ca.issue_client_certificate(
        make_csr(device_key, "DEVICE-1"), validity_days=30, now=datetime.now(UTC)
    )
    pem = serialization.Encoding.PEM
    (base / "ca.pem").write_bytes(ca.certificate.public_bytes(pem))
    (base / "device.pem").write_bytes(device_cert.public_bytes(pem))
    (base / "device.key").write_bytes(
        device_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (base / "shared-secret.bin").write_bytes(b"vpn shared secret")
    (base / "identity.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"alice", device_key, device_cert, None,
            serialization.BestAvailableEncryption(b"p12-secret"),
        )
    )  # fmt: skip
    return {"dir": base, "ca": ca, "server": (server_cert, server_key), "device": device_cert}


def test_every_friendly_type_has_a_spec() -> None:
    assert set(SPECS) == set(FRIENDLY)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_build_validate_sign_encrypt(kind: str, material: dict[str, Any]) -> None:
    base: Path = material["dir"]
    spec = {
        "identifier": f"com.example.{kind}",
        "name": kind,
        "organization": "Example Corp",
        "payloads": [{"type": kind, **entry} for entry in SPECS[kind]],
    }
    profile = build_profile(spec, base_dir=base, env=ENV)
    assert check_profile(profile).ok
    payloads = profile["PayloadContent"]
    assert [p["PayloadType"] for p in payloads] == [FRIENDLY[kind].payload_type] * len(SPECS[kind])

    # Signed: openssl verifies it against our CA and gives back the very profile.
    body = envelope.serialize(profile)
    server_cert, server_key = material["server"]
    signed = envelope.sign(body, server_cert, server_key, [material["ca"].certificate])
    (base / f"{kind}.mobileconfig").write_bytes(signed)
    verified = _openssl(
        "cms", "-verify", "-inform", "DER", "-in", str(base / f"{kind}.mobileconfig"),
        "-CAfile", str(base / "ca.pem"), "-purpose", "any", "-binary",
    )  # fmt: skip
    assert verified == body

    # Encrypted to the device: only its key opens the payloads, and they are intact.
    encrypted = envelope.encrypt_for(profile, material["device"])
    assert "PayloadContent" not in encrypted
    assert check_profile(encrypted).ok
    (base / f"{kind}.p7m").write_bytes(encrypted["EncryptedPayloadContent"])
    opened = _openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", str(base / f"{kind}.p7m"),
        "-recip", str(base / "device.pem"), "-inkey", str(base / "device.key"), "-binary",
    )  # fmt: skip
    assert plistlib.loads(opened) == payloads
    assert ENV["SECRET"].encode() not in encrypted["EncryptedPayloadContent"]


def _openssl(*args: str) -> bytes:
    done = subprocess.run([OPENSSL, *args], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout
