"""orchardist.apps.urls: each link names its path under /apps on the public base URL,
carries a token for exactly that path, and stops working after the TTL; the manifest of a
stored version names the .ipa with its hash and size, and the icon when there is one."""

from __future__ import annotations

import plistlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from orchardist.apps.links import LinkCheck, LinkSigner
from orchardist.apps.urls import (
    AppUrls,
    app_icon,
    icon_subject,
    ipa_subject,
    manifest_subject,
    version_manifest,
)
from orchardist.storage.apps import AppVersion, StoredApp

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = "https://mdm.example.com:8443"
IPA = "a" * 64
ICON = "b" * 64
OTHER_ICON = "c" * 64

VERSION = AppVersion(
    bundle_id="com.example.expenses",
    version_id=3,
    short_version="2.1",
    build="57",
    display_name="Expenses & Co",
    minimum_os="15.0",
    device_family=(1, 2),
    sha256=IPA,
    size=123_456,
    icon_sha256=ICON,
    provisioning_uuid=None,
    provisioning_expires_at=None,
    info={},
    created_at=NOW,
)
APP = StoredApp(
    bundle_id="com.example.expenses",
    display_name="Expenses & Co",
    latest_version_id=3,
    created_at=NOW,
    updated_at=NOW,
    icon_sha256=None,
    description="",
    catalog_groups=(),
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def urls(tmp_path: Path, clock: Clock) -> AppUrls:
    return AppUrls(BASE + "/", LinkSigner.from_data_dir(tmp_path), timedelta(hours=6), clock)


def _path_and_token(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    (token,) = parse_qs(parts.query)["t"]
    return unquote(parts.path), token


def test_each_link_names_its_path_on_the_public_base_url(urls: AppUrls) -> None:
    assert _path_and_token(urls.manifest_url("com.example.expenses", 3))[0] == (
        "/apps/manifest/com.example.expenses/3.plist"
    )
    assert _path_and_token(urls.ipa_url(IPA))[0] == f"/apps/files/{IPA}.ipa"
    assert _path_and_token(urls.icon_url(ICON))[0] == f"/apps/icons/{ICON}.png"


def test_a_token_grants_its_own_path_until_the_ttl_ends(urls: AppUrls, clock: Clock) -> None:
    _, token = _path_and_token(urls.ipa_url(IPA))
    assert urls.check(ipa_subject(IPA), token) == LinkCheck(True, None)
    clock.now = NOW + timedelta(hours=5, minutes=59)
    assert urls.check(ipa_subject(IPA), token).valid
    clock.now = NOW + timedelta(hours=6)
    assert urls.check(ipa_subject(IPA), token) == LinkCheck(False, "expired")


def test_a_token_grants_nothing_else(urls: AppUrls) -> None:
    _, icon_token = _path_and_token(urls.icon_url(ICON))
    _, manifest_token = _path_and_token(urls.manifest_url("com.example.expenses", 3))
    # The icon's token does not open the same hash as an .ipa, nor another icon.
    assert urls.check(ipa_subject(ICON), icon_token).reason == "bad signature"
    assert urls.check(icon_subject(OTHER_ICON), icon_token).reason == "bad signature"
    # Nor does one version's manifest token open another version or another app.
    assert not urls.check(manifest_subject("com.example.expenses", 4), manifest_token).valid
    assert not urls.check(manifest_subject("com.example.other", 3), manifest_token).valid


def test_a_bundle_id_is_quoted_in_the_url_and_checked_decoded(urls: AppUrls) -> None:
    url = urls.manifest_url("com.example.a b/c", 1)
    assert urlsplit(url).path == "/apps/manifest/com.example.a%20b%2Fc/1.plist"
    _, token = _path_and_token(url)
    assert urls.check(manifest_subject("com.example.a b/c", 1), token).valid


def test_the_install_link_is_itms_services_around_the_manifest_url(urls: AppUrls) -> None:
    link = urls.install_link("com.example.expenses", 3)
    assert link.startswith("itms-services://?action=download-manifest&url=https%3A%2F%2F")
    (manifest_url,) = parse_qs(urlsplit(link).query)["url"]
    path, token = _path_and_token(manifest_url)
    assert path == "/apps/manifest/com.example.expenses/3.plist"
    assert urls.check(manifest_subject("com.example.expenses", 3), token).valid


def test_the_admins_icon_wins_over_the_versions() -> None:
    assert app_icon(APP, VERSION) == ICON
    assert app_icon(None, VERSION) == ICON
    assert app_icon(replace(APP, icon_sha256=OTHER_ICON), VERSION) == OTHER_ICON
    assert app_icon(APP, replace(VERSION, icon_sha256=None)) is None


def test_the_manifest_names_the_ipa_with_its_hash_and_the_icon(urls: AppUrls) -> None:
    (item,) = plistlib.loads(version_manifest(urls, APP, VERSION))["items"]
    package, display, full_size = item["assets"]
    assert package["kind"] == "software-package"
    assert _path_and_token(package["url"])[0] == f"/apps/files/{IPA}.ipa"
    assert package["sha256-size"] == 123_456
    assert package["sha256s"] == [IPA]
    assert display["kind"] == "display-image"
    assert full_size["kind"] == "full-size-image"
    assert _path_and_token(display["url"])[0] == f"/apps/icons/{ICON}.png"
    assert item["metadata"] == {
        "bundle-identifier": "com.example.expenses",
        "bundle-version": "2.1",
        "kind": "software",
        "title": "Expenses & Co",
    }


def test_a_manifest_without_an_icon_has_only_the_package(urls: AppUrls) -> None:
    body = version_manifest(urls, None, replace(VERSION, icon_sha256=None))
    (item,) = plistlib.loads(body)["items"]
    assert [asset["kind"] for asset in item["assets"]] == ["software-package"]
