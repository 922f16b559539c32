"""A well-stocked device: many App Store apps and many certificates, so that its
InstalledApplicationList and CertificateList answers run to megabytes, as a Mac or a
long-used iPhone's do. The items carry every response key Apple's schema lists
(`mdm/commands/application.installed.list.yaml`, `certificate.list.yaml`); the values are
made up but shaped like real ones (reverse-DNS bundle ids, version strings, sizes, DER
certificates of a usual size)."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

_VENDORS = ("acme", "contoso", "fabrikam", "globex", "initech", "umbrella", "hooli", "wayne")
_WORDS = ("notes", "maps", "photo", "chat", "budget", "weather", "reader", "fitness", "music",
          "scanner", "travel", "recipes", "tasks", "calendar", "radio", "wallet")  # fmt: skip


@dataclass(frozen=True)
class Stock:
    """How much a virtual device holds beyond its usual few apps and its identity."""

    apps: int = 0
    certificates: int = 0

    def installed_apps(self) -> tuple[dict[str, Any], ...]:
        return stocked_apps(self.apps)

    def certificate_items(self) -> tuple[dict[str, Any], ...]:
        return stocked_certificates(self.certificates)


@functools.cache
def stocked_apps(count: int) -> tuple[dict[str, Any], ...]:
    """`count` App Store apps with every InstalledApplicationList key (~0.6 KB of XML each)."""
    rng = random.Random(count)
    return tuple(_app(rng, n) for n in range(count))


def _app(rng: random.Random, n: int) -> dict[str, Any]:
    vendor, word = rng.choice(_VENDORS), rng.choice(_WORDS)
    short = f"{rng.randrange(1, 20)}.{rng.randrange(10)}.{rng.randrange(10)}"
    return {
        "Identifier": f"com.{vendor}.{word}{n}",
        "ExternalVersionIdentifier": rng.randrange(800_000_000, 900_000_000),
        "DistributorIdentifier": "com.apple.AppStore",
        "Version": str(rng.randrange(1, 5000)),
        "ShortVersion": short,
        "Name": f"{vendor.title()} {word.title()} {n}",
        "BundleSize": rng.randrange(1_000_000, 900_000_000),
        "DynamicSize": rng.randrange(0, 200_000_000),
        "IsValidated": True,
        "Installing": False,
        "AppStoreVendable": True,
        "DeviceBasedVPP": False,
        "BetaApp": False,
        "AdHocCodeSigned": False,
        "HasUpdateAvailable": rng.random() < 0.2,
        "DownloadFailed": False,
        "DownloadWaiting": False,
        "DownloadPaused": False,
        "DownloadCancelled": False,
        "IsAppClip": False,
        "Source": "AppStore",
    }


@functools.cache
def stocked_certificates(count: int) -> tuple[dict[str, Any], ...]:
    """`count` CertificateList items: DER certificates with RSA-2048 keys (~0.8 KB each,
    ~1.2 KB as plist XML), as a trust store or a set of Wi-Fi and VPN identities holds."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = []
    for n in range(count):
        name = x509.Name([
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, f"{_VENDORS[n % 8].title()} Inc"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, f"Stocked Certificate {n}"),
        ])  # fmt: skip
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(n + 1)
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=365 + n))
            .sign(key, hashes.SHA256())
        )
        items.append(
            {
                "CommonName": f"Stocked Certificate {n}",
                "Data": cert.public_bytes(Encoding.DER),
                "IsIdentity": n % 10 == 0,
            }
        )
    return tuple(items)
