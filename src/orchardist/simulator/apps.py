"""The apps on a virtual device: a few the user installed (made-up, unmanaged) and the
in-house apps MDM installed. Answers InstallApplication, RemoveApplication,
InstalledApplicationList and ManagedApplicationList.

InstallApplication is answered once the app is installed: the device fetches the
manifest, downloads and checks the .ipa (`app_download`), then acknowledges with
`Identifier` and `State` "Managed" — a real iPhone acknowledges at once with "Queued" or
"Installing" and reports "Managed" in a later ManagedApplicationList; doing the work
before answering gives the server the same end state with every failure as an ErrorChain
it can show. The answer waits for the download; other devices' sessions go on meanwhile.
Without a ManifestURL the command asks for the App Store, which a virtual device has no
account for: DeviceManagement 2608.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from orchardist.simulator.app_download import DownloadLimits, download_app
from orchardist.simulator.ipa_contents import DownloadedApp
from orchardist.simulator.refusals import DEVICE_MANAGEMENT, refused

# Installed by the user from the App Store: unmanaged, listed by InstalledApplicationList
# (their bundle ids stay clear of the test factory's com.example.expenses).
USER_INSTALLED: tuple[dict[str, Any], ...] = tuple(
    {"Identifier": i, "Name": n, "ShortVersion": s, "Version": v, "BundleSize": b,
     "DynamicSize": 40960, "IsValidated": True, "Installing": False}
    for i, n, s, v, b in (
        ("com.apple.mobilesafari", "Safari", "4.0.5", "6531.22.7", 0),
        ("com.example.timesheet", "Timesheet", "2.1", "210", 4_812_800),
        ("com.example.directory", "Directory", "1.0.3", "13", 1_203_200),
    )
)  # fmt: skip


@dataclass(frozen=True)
class ManagedApp:
    app: DownloadedApp
    management_flags: int
    has_configuration: bool

    def installed_item(self) -> dict[str, Any]:
        return {
            "Identifier": self.app.identifier,
            "Name": self.app.name,
            "ShortVersion": self.app.short_version,
            "Version": self.app.version,
            "BundleSize": self.app.bundle_size,
            "DynamicSize": 40960,
            "IsValidated": True,
            "Installing": False,
        }

    def managed_item(self) -> dict[str, Any]:
        # The keys of a real device's answer for an enterprise app (zentral's capture).
        return {
            "Status": "Managed",
            "ManagementFlags": self.management_flags,
            "HasConfiguration": self.has_configuration,
            "HasFeedback": False,
            "IsValidated": True,
            "ExternalVersionIdentifier": 0,
        }


class DeviceApps:
    """One device's apps, in memory; managed apps by bundle id."""

    def __init__(
        self,
        limits: DownloadLimits | None = None,
        more_user_apps: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.limits = limits or DownloadLimits()
        self.managed: dict[str, ManagedApp] = {}
        self.user_apps = (*USER_INSTALLED, *more_user_apps)  # unmanaged, never changing

    async def install(self, http: httpx.AsyncClient, command: Mapping[str, Any]) -> ManagedApp:
        """Install (or update) the app behind the command's ManifestURL, or refuse."""
        url = command.get("ManifestURL")
        if not isinstance(url, str) or not url:
            raise refused(DEVICE_MANAGEMENT, 2608, "An iTunes Store login is required.")
        app = await download_app(http, url, self.limits)
        flags = command.get("ManagementFlags")
        managed = ManagedApp(
            app=app,
            management_flags=flags if isinstance(flags, int) else 0,
            has_configuration=isinstance(command.get("Configuration"), dict),
        )
        self.managed[app.identifier] = managed
        return managed

    def remove(self, command: Mapping[str, Any]) -> dict[str, Any]:
        if self.managed.pop(str(command.get("Identifier")), None) is None:
            raise refused(DEVICE_MANAGEMENT, 2601, "The app is not managed.")
        return {}

    def installed_list(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """Managed apps, and (unless ManagedAppsOnly) the user's; Identifiers and Items
        narrow the answer as on iOS 14."""
        items = {bundle_id: app.installed_item() for bundle_id, app in self.managed.items()}
        if command.get("ManagedAppsOnly") is not True:
            items = {item["Identifier"]: dict(item) for item in self.user_apps} | items
        wanted = _strings(command.get("Identifiers"))
        keys = _strings(command.get("Items"))
        return {
            "InstalledApplicationList": [
                {k: v for k, v in item.items() if keys is None or k in keys or k == "Identifier"}
                for identifier, item in items.items()
                if wanted is None or identifier in wanted
            ]
        }

    def managed_list(self, command: Mapping[str, Any]) -> dict[str, Any]:
        wanted = _strings(command.get("Identifiers"))
        return {
            "ManagedApplicationList": {
                identifier: app.managed_item()
                for identifier, app in self.managed.items()
                if wanted is None or identifier in wanted
            }
        }


def _strings(value: object) -> Sequence[str] | None:
    """A list of strings from the command, or None when absent or empty (no filter)."""
    if not isinstance(value, list) or not value:
        return None
    return [item for item in value if isinstance(item, str)]
