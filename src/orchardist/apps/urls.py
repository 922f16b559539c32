"""The links devices and the catalog use for an app: its manifest, its .ipa and its icon,
signed and expiring, on the server's public base URL — and the manifest served behind the
first of them.

Each link's token (`LinkSigner`) is signed over the link's *subject*: the path under
`/apps/` as it reads decoded ("manifest/com.example.expenses/3.plist",
"files/<sha256>.ipa", "icons/<sha256>.png"). So a token grants exactly one thing: an icon's
token does not open the .ipa, nor one app's manifest another's. The routes (web/app_files.py)
rebuild the subject from the path they were asked for and call `AppUrls.check`.

Every call signs anew with `clock() + ttl`: a page or a manifest hands out links that work
for `ttl` from when it was made. The manifest itself is served under a signed link and
names the .ipa and icon with links signed when it is served, so a device that fetches the
manifest just in time always gets working download links.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from orchardist.apps.links import LinkCheck, LinkSigner
from orchardist.apps.manifest import itms_services_link, manifest_plist
from orchardist.storage.apps import AppVersion, StoredApp


def manifest_subject(bundle_id: str, version_id: int) -> str:
    return f"manifest/{bundle_id}/{version_id}.plist"


def ipa_subject(sha256: str) -> str:
    return f"files/{sha256}.ipa"


def icon_subject(sha256: str) -> str:
    return f"icons/{sha256}.png"


class AppUrls:
    """Signed, expiring links on the server's public base URL, for devices and the catalog."""

    def __init__(
        self,
        base_url: str,
        signer: LinkSigner,
        ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer, self.ttl, self.clock = signer, ttl, clock

    def manifest_url(self, bundle_id: str, version_id: int) -> str:
        """{base}/apps/manifest/{bundle id}/{version id}.plist?t=TOKEN"""
        path = manifest_subject(quote(bundle_id, safe=""), version_id)
        return self._signed(manifest_subject(bundle_id, version_id), path)

    def ipa_url(self, sha256: str) -> str:
        """{base}/apps/files/{sha256}.ipa?t=TOKEN"""
        return self._signed(ipa_subject(sha256), ipa_subject(sha256))

    def icon_url(self, sha256: str) -> str:
        """{base}/apps/icons/{sha256}.png?t=TOKEN"""
        return self._signed(icon_subject(sha256), icon_subject(sha256))

    def install_link(self, bundle_id: str, version_id: int) -> str:
        """The itms-services:// link Safari installs the app from."""
        return itms_services_link(self.manifest_url(bundle_id, version_id))

    def check(self, subject: str, token: str) -> LinkCheck:
        """Whether `token` grants `subject` (one of the *_subject forms) now."""
        return self.signer.check(subject, token, self.clock())

    def _signed(self, subject: str, path: str) -> str:
        """`path`: the subject with its parts percent-encoded for the URL."""
        token = self.signer.sign(subject, self.clock() + self.ttl)
        return f"{self.base_url}/apps/{path}?t={token}"


def app_icon(app: StoredApp | None, version: AppVersion) -> str | None:
    """The icon to show for `version`: the admin's replacement when there is one, else the
    icon read from the .ipa; None when neither exists."""
    if app is not None and app.icon_sha256 is not None:
        return app.icon_sha256
    return version.icon_sha256


def version_manifest(urls: AppUrls, app: StoredApp | None, version: AppVersion) -> bytes:
    """The manifest for `version` (protocol notes §3i): the .ipa under a fresh link with its
    size and SHA-256 as one chunk, the icon as display and full-size image when there is
    one, and the app's bundle id, short version and display name."""
    icon = app_icon(app, version)
    icon_url = urls.icon_url(icon) if icon is not None else None
    return manifest_plist(
        version.bundle_id,
        version.short_version,
        version.display_name,
        urls.ipa_url(version.sha256),
        display_image_url=icon_url,
        full_size_image_url=icon_url,
        ipa_sha256=version.sha256,
        ipa_size=version.size,
    )
