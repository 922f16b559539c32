"""What a virtual device reads from a downloaded .ipa before installing it: the one
`Payload/<Name>.app/`, its Info.plist (bundle id, versions, name; binary or XML) and the
`embedded.mobileprovision` iOS installs with the app. Every member read is bounded (the
zip header's size may lie); anything unreadable is DeviceManagement 2208."""

from __future__ import annotations

import plistlib
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from orchardist.simulator.provisioning import (
    MAX_PROFILE_BYTES,
    HeldProfile,
    ProvisioningReadError,
    read_provisioning_profile,
)
from orchardist.simulator.refusals import install_failed


@dataclass(frozen=True)
class DownloadedApp:
    identifier: str
    name: str
    version: str  # CFBundleVersion (the build)
    short_version: str  # CFBundleShortVersionString (the manifest's bundle-version)
    bundle_size: int  # the app bundle's uncompressed bytes
    embedded_profile: HeldProfile | None


def read_app(file: IO[bytes], url: str, info_plist_bytes: int) -> DownloadedApp:
    """Info.plist (and the embedded profile) of the .ipa in `file` (blocking)."""
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as ipa:
            app_dir = _app_dir(ipa.namelist(), url)
            info_bytes = _member(ipa, f"{app_dir}Info.plist", info_plist_bytes)
            profile_bytes = _member(ipa, f"{app_dir}embedded.mobileprovision", MAX_PROFILE_BYTES)
            bundle_size = sum(i.file_size for i in ipa.infolist()
                              if i.filename.startswith(app_dir))  # fmt: skip
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise install_failed(f"{url} is not a readable .ipa ({exc})") from exc
    if info_bytes is None:
        raise install_failed(f"{url} has no {app_dir}Info.plist")
    return _app_from(info_bytes, profile_bytes, bundle_size, url)


def _app_dir(names: list[str], url: str) -> str:
    """`Payload/<Name>.app/`: the one app an .ipa holds (the first, should there be more)."""
    split = (name.split("/") for name in names)
    apps = sorted({p[1] for p in split if len(p) > 2 and p[0] == "Payload" and p[1][-4:] == ".app"})
    if not apps:
        raise install_failed(f"{url} holds no Payload/*.app")
    return f"Payload/{apps[0]}/"


def _member(ipa: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    try:
        info = ipa.getinfo(name)
    except KeyError:
        return None
    if info.file_size > limit:
        raise install_failed(f"{name} is {info.file_size:,} bytes, more than {limit:,}")
    with ipa.open(info) as member:
        data = member.read(limit + 1)  # the header's size may lie
    if len(data) > limit:
        raise install_failed(f"{name} is more than {limit:,} bytes")
    return data


def _app_from(info_bytes: bytes, profile: bytes | None, size: int, url: str) -> DownloadedApp:
    try:
        info = plistlib.loads(info_bytes)
    except Exception as exc:  # plistlib raises many types (InvalidFileException, ExpatError…)
        raise install_failed(f"the Info.plist in {url} is not a property list ({exc})") from exc
    if not isinstance(info, dict):
        raise install_failed(f"the Info.plist in {url} is not a dictionary")
    identifier = info.get("CFBundleIdentifier")
    if not isinstance(identifier, str) or not identifier:
        raise install_failed(f"the Info.plist in {url} has no CFBundleIdentifier")
    try:
        embedded = None if profile is None else read_provisioning_profile(profile)
    except ProvisioningReadError as exc:
        raise install_failed(f"its embedded provisioning profile is unusable: {exc}") from exc
    name = info.get("CFBundleDisplayName") or info.get("CFBundleName") or identifier
    return DownloadedApp(
        identifier=identifier,
        name=str(name),
        version=str(info.get("CFBundleVersion", "")),
        short_version=str(info.get("CFBundleShortVersionString", "")),
        bundle_size=size,
        embedded_profile=embedded,
    )
