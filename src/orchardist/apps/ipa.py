"""What an .ipa is: `read_ipa(source) -> AppBundle`, or an `IpaError` saying why not.

An .ipa is a zip holding exactly one `Payload/<Name>.app/` bundle (beside it Xcode may put
`SwiftSupport/`, `Symbols/`, `META-INF/`, `iTunesMetadata.plist`). From the bundle we read:

- `Info.plist` (binary or XML; at most `IpaLimits.max_info_plist` bytes): bundle id,
  versions, name, minimum OS, device family. No, malformed or id-less Info.plist → IpaError.
- the icon: the largest PNG among those Info.plist lists, converted from Apple's CgBI
  (`apps.icons`, `apps.cgbi`). An icon that cannot be read is a warning, not a refusal:
  an admin may upload a replacement.
- `embedded.mobileprovision`, verified (`apps.provisioning`); a malformed or forged one →
  IpaError, since a tampered signature means a tampered app.

The archive is read through `apps.safezip` (zip bombs, unsafe names, symlinks refused);
the file is streamed, never held in memory. Whether an upload with an expired or
mismatched provisioning profile is accepted is `apps.checks`' call, not this module's.
Reading is CPU and disk work: from async code, run it in a thread (`anyio.to_thread`).
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from cryptography import x509

from orchardist.apps import icons
from orchardist.apps.provisioning import (
    MAX_PROFILE_BYTES,
    ProvisioningError,
    ProvisioningProfile,
    read_mobileprovision,
)
from orchardist.apps.safezip import IpaError, IpaLimits, SafeZip

__all__ = ["AppBundle", "IpaError", "IpaLimits", "read_ipa"]

# Apple: alphanumeric characters (A-Z, a-z, 0-9), hyphens and periods.
_BUNDLE_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_MAX_BUNDLE_ID = 255


@dataclass(frozen=True)
class AppBundle:
    bundle_id: str  # CFBundleIdentifier
    short_version: str  # CFBundleShortVersionString ("1.2.3"); CFBundleVersion when absent
    build: str  # CFBundleVersion; the short version when absent
    display_name: str  # CFBundleDisplayName, else CFBundleName, else the bundle folder name
    minimum_os: str | None  # MinimumOSVersion
    device_family: tuple[int, ...]  # UIDeviceFamily: 1 iPhone/iPod, 2 iPad; (1,) when absent
    app_dir: str  # "Payload/Expenses.app"
    icon_png: bytes | None  # a standard PNG (CgBI converted), the largest listed; None: none
    icon_source: str | None  # the member it came from, "Payload/X.app/AppIcon60x60@3x.png"
    provisioning: ProvisioningProfile | None  # embedded.mobileprovision, verified
    info: Mapping[str, Any] = field(repr=False)  # Info.plist as read, read-only
    warnings: tuple[str, ...] = ()  # things to show an admin that do not stop an upload

    @property
    def version(self) -> str:
        """The version a person sees and the manifest's bundle-version: the short version."""
        return self.short_version


def read_ipa(
    source: Path | BinaryIO,
    limits: IpaLimits = IpaLimits(),  # noqa: B008 -- frozen, so one shared default is safe
    *,
    trusted_roots: Sequence[x509.Certificate] | None = None,
) -> AppBundle:
    """Read and check an .ipa (a path, or a seekable binary file). `trusted_roots` is
    passed to `read_mobileprovision` for the embedded profile."""
    with SafeZip.open(source, limits) as archive:
        app_dir = _bundle_dir(archive.members)
        info = _info_plist(archive, app_dir)
        bundle_id = _bundle_id(info)
        warnings: list[str] = []
        icon = icons.largest_icon(archive, app_dir, info, warnings)
        profile = _embedded_profile(archive, app_dir, trusted_roots)
        if limits.verify_members:  # last: the cheap refusals above answer at once
            archive.drain_all()
    short_version = _optional_text(info, "CFBundleShortVersionString")
    build = _optional_text(info, "CFBundleVersion")
    if short_version is None and build is None:
        raise IpaError("Info.plist has no CFBundleShortVersionString or CFBundleVersion")
    return AppBundle(
        bundle_id=bundle_id,
        short_version=short_version or build or "",
        build=build or short_version or "",
        display_name=_optional_text(info, "CFBundleDisplayName")
        or _optional_text(info, "CFBundleName")
        or app_dir.removeprefix("Payload/").removesuffix(".app"),
        minimum_os=_optional_text(info, "MinimumOSVersion"),
        device_family=_device_family(info),
        app_dir=app_dir,
        icon_png=icon.png if icon else None,
        icon_source=icon.source if icon else None,
        provisioning=profile,
        info=MappingProxyType(info),
        warnings=tuple(warnings),
    )


def _bundle_dir(members: Mapping[str, object]) -> str:
    found = set()
    for name in members:
        parts = name.split("/")
        if len(parts) >= 3 and parts[0] == "Payload" and parts[1].endswith(".app"):
            found.add(parts[1])
    if not found:
        raise IpaError("no app inside: an .ipa holds one Payload/<Name>.app folder")
    if len(found) > 1:
        raise IpaError(f"more than one app inside: {', '.join(sorted(found))}")
    return f"Payload/{found.pop()}"


def _info_plist(archive: SafeZip, app_dir: str) -> dict[str, Any]:
    name = f"{app_dir}/Info.plist"
    if name not in archive.members:
        raise IpaError(f"the app has no Info.plist ({name})")
    data = archive.read(name, archive.limits.max_info_plist, "Info.plist")
    try:
        info = plistlib.loads(data)
    except Exception as exc:  # InvalidFileException, ExpatError, ValueError, OverflowError…
        raise IpaError(f"Info.plist is not a valid property list: {exc}") from exc
    if not isinstance(info, dict):
        raise IpaError("Info.plist is not a dictionary")
    return info


def _bundle_id(info: Mapping[str, Any]) -> str:
    value = info.get("CFBundleIdentifier")
    if not isinstance(value, str) or not value:
        raise IpaError("Info.plist has no CFBundleIdentifier (the app's bundle id)")
    if len(value) > _MAX_BUNDLE_ID or not _BUNDLE_ID.fullmatch(value):
        raise IpaError(
            f"Info.plist's CFBundleIdentifier {value[:80]!r} is not a bundle id "
            "(letters, digits, hyphens and periods)"
        )
    return value


def _optional_text(info: Mapping[str, Any], key: str) -> str | None:
    value = info.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IpaError(f"Info.plist's {key} is not a string")
    return value.strip() or None


def _device_family(info: Mapping[str, Any]) -> tuple[int, ...]:
    value = info.get("UIDeviceFamily", [1])  # absent: iPhone only (Apple's default)
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, int) and not isinstance(item, bool) for item in values):
        raise IpaError("Info.plist's UIDeviceFamily is not a list of numbers")
    return tuple(values)


def _embedded_profile(
    archive: SafeZip, app_dir: str, trusted_roots: Sequence[x509.Certificate] | None
) -> ProvisioningProfile | None:
    name = f"{app_dir}/embedded.mobileprovision"
    if name not in archive.members:
        return None
    data = archive.read(name, MAX_PROFILE_BYTES, "embedded.mobileprovision")
    try:
        return read_mobileprovision(data, trusted_roots=trusted_roots)
    except ProvisioningError as exc:
        raise IpaError(f"the app's embedded.mobileprovision is refused: {exc}") from exc
