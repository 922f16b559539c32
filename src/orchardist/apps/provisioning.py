"""Provisioning profiles (`.mobileprovision`): read, verify, describe.

A provisioning profile is a DER CMS SignedData (RFC 5652) whose content is an XML plist:
Name, UUID, TeamIdentifier, TeamName, AppIDName, CreationDate, ExpirationDate,
Entitlements (application-identifier "TEAMID.com.example.app", or a wildcard "TEAMID.*" /
"TEAMID.com.example.*"), ProvisionedDevices (UDIDs) or ProvisionsAllDevices (enterprise
in-house profiles), DeveloperCertificates (DER certificates allowed to sign the app).

Verification is `orchardist.pki.cms.verify`, the same code that checks SCEP and MDM
signatures: the messageDigest attribute equals the content's hash and the signature over the
signed attributes verifies with the signer certificate the SignedData carries. Tampered
content or a wrong signature is a `ProvisioningError`.

Trust: Apple signs profiles with "Apple iPhone OS Provisioning Profile Signing", under
Apple's root. We cannot ship Apple's root here, so by default the signature proves
integrity only (the profile was not changed since someone signed it) and the signer's
subject is reported for an admin to read. Pass `trusted_roots` (for example Apple's root CA
certificate, downloaded by the admin) to also require that the signer chains to one of them
(directly or through one intermediate the profile carries, as Apple's do), checked at the
signing time: Apple keeps profiles working after its signing certificate is renewed.

Expiry: an expired profile is reported (`expiry`), not refused here; see `apps.checks` for
what an upload does with it.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from orchardist.pki import cms

# Real profiles are a few KB (a developer profile with 100 devices about 30 KB).
MAX_PROFILE_BYTES = 1024 * 1024
# Days before expiry at which an admin is warned (issue 13: 30, 14 and 7 days).
EXPIRY_WARNING_DAYS = (30, 14, 7)


class ProvisioningError(ValueError):
    """Not a provisioning profile, or one whose signature does not verify; str(err) says
    which in words an admin can act on."""


@dataclass(frozen=True)
class DeveloperCertificate:
    """A certificate allowed to sign apps under the profile."""

    subject: str  # RFC 4514, e.g. "CN=iPhone Distribution: Example Corp (ABCDE12345),…"
    common_name: str
    serial_number: str  # hex
    not_after: datetime  # UTC
    sha1: str  # hex fingerprint, as Keychain Access and Xcode show it


@dataclass(frozen=True)
class ProvisioningProfile:
    name: str
    uuid: str
    team_id: str  # the first TeamIdentifier
    team_name: str
    app_id: str  # Entitlements application-identifier: "TEAMID.com.example.app", "TEAMID.*"
    app_id_name: str
    created_at: datetime  # UTC
    expires_at: datetime  # UTC
    provisions_all_devices: bool  # enterprise (in-house) profiles
    devices: tuple[str, ...]  # ProvisionedDevices UDIDs; empty when provisions_all_devices
    developer_certificates: tuple[DeveloperCertificate, ...]
    platforms: tuple[str, ...]  # "iOS", "xrOS"…
    entitlements: Mapping[str, Any]
    signer_subject: str  # RFC 4514 subject of the CMS signer
    signer_trusted: bool  # True only when trusted_roots were given and the chain checked
    raw: bytes  # the .mobileprovision as read, for InstallProvisioningProfile

    @property
    def bundle_pattern(self) -> str:
        """The app id without its team prefix: "com.example.app", "com.example.*", "*"."""
        return self.app_id.partition(".")[2]

    def expiry(self, now: datetime) -> str:
        return describe_expiry(self.expires_at, now)


def read_mobileprovision(
    data: bytes, *, trusted_roots: Sequence[x509.Certificate] | None = None
) -> ProvisioningProfile:
    """Verify and read a .mobileprovision. ProvisioningError when it is not one, its
    signature does not verify, or (with trusted_roots) its signer is not trusted."""
    if len(data) > MAX_PROFILE_BYTES:
        raise ProvisioningError(
            f"the provisioning profile is {len(data):,} bytes: real ones are a few KB, "
            f"at most {MAX_PROFILE_BYTES:,} are read"
        )
    try:
        message = cms.verify(data)
        if trusted_roots is not None:
            # Checked at the signing time (default now): see the module docstring.
            cms.verify(data, trusted=trusted_roots, at=message.signing_time)
    except cms.CmsError as exc:
        raise ProvisioningError(_cms_reason(data, exc)) from exc
    plist = _plist(message.content)
    return ProvisioningProfile(
        name=_text(plist, "Name", required=False),
        uuid=_text(plist, "UUID"),
        team_id=_team_id(plist),
        team_name=_text(plist, "TeamName", required=False),
        app_id=_app_id(plist),
        app_id_name=_text(plist, "AppIDName", required=False),
        created_at=_date(plist, "CreationDate"),
        expires_at=_date(plist, "ExpirationDate"),
        provisions_all_devices=plist.get("ProvisionsAllDevices") is True,
        devices=_strings(plist, "ProvisionedDevices"),
        developer_certificates=_developer_certificates(plist),
        platforms=_strings(plist, "Platform"),
        entitlements=MappingProxyType(dict(plist.get("Entitlements", {}))),
        signer_subject=message.signer.subject.rfc4514_string(),
        signer_trusted=trusted_roots is not None,
        raw=bytes(data),
    )


def matches_bundle(profile: ProvisioningProfile, bundle_id: str) -> bool:
    """Whether the profile's app id covers `bundle_id`: an exact "TEAMID.com.example.app",
    "TEAMID.*" (any app of the team) or "TEAMID.com.example.*" (any id under com.example.).
    Compared exactly, as the device's installer does."""
    pattern = profile.bundle_pattern
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return bundle_id.startswith(pattern[:-1]) and len(bundle_id) > len(pattern) - 1
    return bundle_id == pattern


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until expiry (0 on its last day, negative once expired)."""
    return (expires_at - now).days


def describe_expiry(expires_at: datetime, now: datetime) -> str:
    """ "expired 3 days ago", "expired today", "expires today", "expires in 1 day", …"""
    if expires_at <= now:
        ago = (now - expires_at).days
        return "expired today" if ago == 0 else f"expired {_days(ago)} ago"
    left = days_left(expires_at, now)
    return "expires today" if left == 0 else f"expires in {_days(left)}"


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _cms_reason(data: bytes, exc: cms.CmsError) -> str:
    if str(exc).startswith(("malformed CMS", "expected DER CMS", "expected CMS")):
        return "this is not a provisioning profile (not a signed CMS message)"
    return f"the provisioning profile's signature does not verify: {exc}"


def _plist(content: bytes) -> dict[str, Any]:
    try:
        plist = plistlib.loads(content)
    except Exception as exc:  # plistlib raises many types (InvalidFileException, ExpatError…)
        raise ProvisioningError(
            f"the provisioning profile's content is not a property list: {exc}"
        ) from exc
    if not isinstance(plist, dict):
        raise ProvisioningError("the provisioning profile's content is not a dictionary")
    return plist


def _text(plist: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = plist.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None and not required:
        return ""
    raise ProvisioningError(f"the provisioning profile has no valid {key}")


def _team_id(plist: Mapping[str, Any]) -> str:
    teams = plist.get("TeamIdentifier")
    if isinstance(teams, list) and teams and isinstance(teams[0], str) and teams[0]:
        return teams[0]
    raise ProvisioningError("the provisioning profile has no TeamIdentifier")


def _app_id(plist: Mapping[str, Any]) -> str:
    entitlements = plist.get("Entitlements")
    app_id = entitlements.get("application-identifier") if isinstance(entitlements, dict) else None
    if isinstance(app_id, str) and "." in app_id:
        return app_id
    raise ProvisioningError("the provisioning profile has no application-identifier entitlement")


def _date(plist: Mapping[str, Any], key: str) -> datetime:
    value = plist.get(key)
    if not isinstance(value, datetime):
        raise ProvisioningError(f"the provisioning profile has no valid {key}")
    # plistlib (before Python 3.13) returns naive datetimes that are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _strings(plist: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = plist.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProvisioningError(f"the provisioning profile's {key} is not a list of strings")
    return tuple(value)


def _developer_certificates(plist: Mapping[str, Any]) -> tuple[DeveloperCertificate, ...]:
    listed = plist.get("DeveloperCertificates", [])
    if not isinstance(listed, list):
        raise ProvisioningError("the provisioning profile's DeveloperCertificates is not a list")
    found = []
    for der in listed:
        try:
            cert = x509.load_der_x509_certificate(der)
            subject = cert.subject.rfc4514_string()
        except (TypeError, ValueError) as exc:
            raise ProvisioningError(
                f"the provisioning profile holds a developer certificate that cannot be read: {exc}"
            ) from exc
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        found.append(
            DeveloperCertificate(
                subject=subject,
                common_name=str(names[0].value) if names else "",
                serial_number=format(cert.serial_number, "x"),
                not_after=cert.not_valid_after_utc,
                # A fingerprint to show, as Keychain Access and Xcode show it.
                sha1=cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303
            )
        )
    return tuple(found)
