"""Test data for in-house apps: .ipa files, provisioning profiles and CgBI icons that look
like Xcode's, made here so a clone needs nothing else.

- `build_ipa(path, …)`: a real .ipa (zip) with `Payload/<Name>.app/` holding a binary (or
  XML) Info.plist, an executable stand-in, `_CodeSignature/CodeResources`, two CgBI icons
  (AppIcon60x60@2x 120 px and @3x 180 px, listed the way Xcode lists them) and an
  `embedded.mobileprovision` signed by the test team. `size_padding` adds a stored member
  of that many zero bytes, written in pieces, for big files cheaply (the bench).
- `build_mobileprovision(…)`: a real CMS SignedData (cryptography's PKCS7SignatureBuilder,
  DER, with signed attributes) over a profile plist, signed by the test team certificate
  (issued by a test CA; `TEAM.ca_cert` is the root to pass as `trusted_roots`).
- `cgbi_png(width, height)` / `sample_rgba(width, height)`: an RGBA test image and the
  CgBI PNG Apple's pngcrush (`-iphone`) would make of it: BGRA, premultiplied alpha, raw
  deflate, a CgBI chunk first, every row filter type used.
"""

from __future__ import annotations

import functools
import plistlib
import struct
import uuid
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID

from tests.keys import rsa_key

TEAM_ID = "ABCDE12345"
BUNDLE_ID = "com.example.expenses"
DEFAULT = object()  # "make the usual one" for arguments where None means "none"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- the test team: a CA and the team's certificate ----------------------------------


@dataclass(frozen=True)
class Team:
    team_id: str
    name: str
    ca_cert: x509.Certificate  # the stand-in for Apple's root
    cert: x509.Certificate  # "iPhone Distribution: <name> (<team id>)", signs profiles here
    key: rsa.RSAPrivateKey


def team_for(team_id: str = TEAM_ID, name: str = "Example Corp") -> Team:
    """One test team per (team id, name) per run: keys are slow to make. (The cache is
    keyed on both, however they are passed: `team_for()` and `team_for(TEAM_ID)` are one
    team, not two made a second apart.)"""
    return _team(team_id, name)


@functools.cache
def _team(team_id: str, name: str) -> Team:
    ca_key, key = rsa_key(130), rsa_key(131 + sum(map(ord, team_id)))
    ca_name = x509_name("Test Apple Root CA", "Test Apple")
    ca_cert = certificate(ca_name, ca_name, ca_key, ca_key, days=3650, ca=True)
    subject = x509_name(f"iPhone Distribution: {name} ({team_id})", name, team_id)
    cert = certificate(subject, ca_name, key, ca_key, days=365, ca=False)
    return Team(team_id, name, ca_cert, cert, key)


def x509_name(common_name: str, organization: str, unit: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name(attributes)


def certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer_key: rsa.RSAPrivateKey,
    *,
    days: int,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    constraints = x509.BasicConstraints(ca=ca, path_length=1 if ca else None)
    builder = x509.CertificateBuilder(
        issuer_name=issuer,
        subject_name=subject,
        public_key=key.public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=now - timedelta(days=1),
        not_valid_after=now + timedelta(days=days),
    )
    return builder.add_extension(constraints, critical=True).sign(issuer_key, hashes.SHA256())


TEAM = team_for()


# --- provisioning profiles -------------------------------------------------------------


def profile_plist(
    *,
    team_id: str = TEAM_ID,
    app_id: str | None = None,
    expires_at: datetime | None = None,
    created_at: datetime | None = None,
    devices: Sequence[str] | None = None,
    all_devices: bool | None = None,
    name: str = "Expenses In House",
    profile_uuid: str | None = None,
    developer_certificates: Sequence[x509.Certificate] | None = None,
) -> dict[str, Any]:
    """The plist inside a profile, as Xcode's in-house (all devices) or ad-hoc (device
    list) profiles hold it. plistlib wants naive UTC datetimes."""
    now = datetime.now(UTC).replace(microsecond=0)
    created = created_at or now - timedelta(days=1)
    expires = expires_at or now + timedelta(days=365)
    team = team_for(team_id)
    body: dict[str, Any] = {
        "AppIDName": "Expenses",
        "ApplicationIdentifierPrefix": [team_id],
        "CreationDate": created.astimezone(UTC).replace(tzinfo=None),
        "DeveloperCertificates": [
            c.public_bytes(Encoding.DER) for c in (developer_certificates or [team.cert])
        ],
        "Entitlements": {
            "application-identifier": app_id or f"{team_id}.{BUNDLE_ID}",
            "com.apple.developer.team-identifier": team_id,
            "get-task-allow": False,
            "keychain-access-groups": [f"{team_id}.*"],
        },
        "ExpirationDate": expires.astimezone(UTC).replace(tzinfo=None),
        "Name": name,
        "Platform": ["iOS"],
        "TeamIdentifier": [team_id],
        "TeamName": "Example Corp",
        "TimeToLive": max(1, (expires - created).days),
        "UUID": profile_uuid or str(uuid.uuid4()).upper(),
        "Version": 1,
    }
    if devices is not None:
        body["ProvisionedDevices"] = list(devices)
    if all_devices if all_devices is not None else devices is None:
        body["ProvisionsAllDevices"] = True
    return body


def sign_profile(
    content: bytes,
    signer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    carried: Sequence[x509.Certificate] = (TEAM.ca_cert,),
) -> bytes:
    """`content` as a DER CMS SignedData with signed attributes, carrying the signer's
    certificate and `carried` (the CA), as Apple's profiles carry their chain."""
    cert, key = signer or (TEAM.cert, TEAM.key)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(cert, key, hashes.SHA256())
    for extra in carried:
        builder = builder.add_certificate(extra)
    return builder.sign(Encoding.DER, [pkcs7.PKCS7Options.Binary])


def build_mobileprovision(
    *,
    team_id: str = TEAM_ID,
    app_id: str | None = None,
    expires_at: datetime | None = None,
    devices: Sequence[str] | None = None,
    all_devices: bool | None = None,
    signer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    **plist_fields: Any,
) -> bytes:
    """A signed .mobileprovision; app id defaults to TEAMID.com.example.expenses, expiry to
    a year from now, devices to all (an in-house profile). See `profile_plist` for more."""
    body = profile_plist(
        team_id=team_id,
        app_id=app_id,
        expires_at=expires_at,
        devices=devices,
        all_devices=all_devices,
        **plist_fields,
    )
    team = team_for(team_id)
    return sign_profile(plistlib.dumps(body), signer or (team.cert, team.key))


# --- CgBI icons ------------------------------------------------------------------------


def sample_rgba(width: int, height: int) -> bytes:
    """A test image: gradients, an opaque block, a fully transparent corner and
    half-transparent pixels, so every conversion step shows."""
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            red, green, blue = (x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), 90
            if x < width // 4 and y < height // 4:
                alpha, red, green, blue = 0, 0, 0, 0  # transparent corner (colour 0, as stored)
            elif y > height // 2:
                alpha = 64 + (x * 191) // max(1, width - 1)  # half-transparent ramp
            else:
                alpha = 255
            pixels += bytes((red, green, blue, alpha))
    return bytes(pixels)


@functools.cache
def cgbi_png(width: int, height: int) -> bytes:
    """The CgBI PNG of `sample_rgba(width, height)` (see the module docstring)."""
    rgba = sample_rgba(width, height)
    stride = width * 4
    stored = bytearray()
    for i in range(0, len(rgba), 4):
        red, green, blue, alpha = rgba[i : i + 4]
        stored += bytes((_premultiply(blue, alpha), _premultiply(green, alpha)))
        stored += bytes((_premultiply(red, alpha), alpha))
    rows = [stored[y * stride : (y + 1) * stride] for y in range(height)]
    filtered = bytearray()
    previous = bytes(stride)
    for y, row in enumerate(rows):
        kind = y % 5  # None, Sub, Up, Average, Paeth in turn
        filtered.append(kind)
        filtered += _filter(kind, bytes(row), previous)
        previous = bytes(row)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw: no zlib header
    data = deflater.compress(bytes(filtered)) + deflater.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            png_chunk(b"CgBI", b"\x50\x00\x20\x06"),
            png_chunk(b"IHDR", header),
            png_chunk(b"IDAT", data),
            png_chunk(b"IEND", b""),
        )
    )


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _premultiply(value: int, alpha: int) -> int:
    return (value * alpha + 127) // 255


def _filter(kind: int, row: bytes, previous: bytes) -> bytes:
    out = bytearray()
    for i, value in enumerate(row):
        left = row[i - 4] if i >= 4 else 0
        up, up_left = previous[i], previous[i - 4] if i >= 4 else 0
        predictor = (0, left, up, (left + up) >> 1, _paeth(left, up, up_left))[kind]
        out.append((value - predictor) & 0xFF)
    return bytes(out)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


# --- .ipa files ------------------------------------------------------------------------


# Info.plist keys Xcode writes that no argument of build_ipa changes.
INFO_BASE: dict[str, Any] = {
    "CFBundleDevelopmentRegion": "en",
    "CFBundleExecutable": "Expenses",
    "CFBundleInfoDictionaryVersion": "6.0",
    "CFBundleName": "Expenses",
    "CFBundlePackageType": "APPL",
    "CFBundleSupportedPlatforms": ["iPhoneOS"],
    "DTPlatformName": "iphoneos",
    "UIRequiredDeviceCapabilities": ["arm64"],
}
# How Xcode lists an asset catalog's app icon beside the loose PNGs it copies.
ICON_ENTRY = {
    "CFBundlePrimaryIcon": {"CFBundleIconFiles": ["AppIcon60x60"], "CFBundleIconName": "AppIcon"}
}


def build_ipa(
    path: Path,
    *,
    bundle_id: str = BUNDLE_ID,
    version: str = "1.0",
    build: str = "1",
    display_name: str = "Expenses",
    minimum_os: str = "15.0",
    device_family: Sequence[int] = (1, 2),
    icon: bool = True,
    provisioning: bytes | object | None = DEFAULT,
    binary_plist: bool = True,
    info_overrides: Mapping[str, Any] | None = None,
    extra_members: Mapping[str, bytes] | None = None,
    size_padding: int = 0,
) -> Path:
    """Write an .ipa to `path` and return it. `provisioning`: the profile's bytes, None
    for none, or (default) an in-house profile for `bundle_id`. `info_overrides` are
    merged into Info.plist (a value None removes the key)."""
    app = f"Payload/{display_name.replace(' ', '')}.app"
    info = INFO_BASE | {
        "CFBundleIdentifier": bundle_id,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": build,
        "CFBundleDisplayName": display_name,
        "MinimumOSVersion": minimum_os,
        "UIDeviceFamily": list(device_family),
    }
    if icon:
        info["CFBundleIcons"] = ICON_ENTRY
    for key, value in (info_overrides or {}).items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    members: dict[str, bytes] = {
        f"{app}/Info.plist": plistlib.dumps(
            info, fmt=plistlib.FMT_BINARY if binary_plist else plistlib.FMT_XML
        ),
        f"{app}/Expenses": b"\xcf\xfa\xed\xfe" + bytes(range(256)) * 64,  # Mach-O magic
        f"{app}/_CodeSignature/CodeResources": plistlib.dumps({"files": {}}),
        f"{app}/PkgInfo": b"APPL????",
    }
    if icon:
        members[f"{app}/AppIcon60x60@2x.png"] = cgbi_png(120, 120)
        members[f"{app}/AppIcon60x60@3x.png"] = cgbi_png(180, 180)
    if provisioning is DEFAULT:
        provisioning = build_mobileprovision(app_id=f"{TEAM_ID}.{bundle_id}")
    if isinstance(provisioning, bytes):
        members[f"{app}/embedded.mobileprovision"] = provisioning
    members.update(extra_members or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if size_padding:
            _write_padding(archive, f"{app}/Padding.bin", size_padding)
    return path


def _write_padding(archive: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    piece = bytes(1024 * 1024)
    with archive.open(info, "w", force_zip64=size > 0x7FFFFFFF) as member:
        for offset in range(0, size, len(piece)):
            member.write(piece[: min(len(piece), size - offset)])
