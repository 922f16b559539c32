"""The files devices fetch to install an app, through the ASGI app: the manifest under its
signed link names the .ipa and icon under links that work and whose bytes check out; a
missing, forged, borrowed or expired token is refused with the reason before anything is
looked up; a valid link to something gone is a 404; Range requests resume a download."""

from __future__ import annotations

import hashlib
import plistlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from orchardist.apps.urls import AppUrls
from orchardist.storage.apps import AppVersion
from tests.web.mdm_server import Server
from tests.web.stored_apps import store_app

pytestmark = pytest.mark.anyio
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _urls(server: Server) -> AppUrls:
    urls = server.services.app_urls
    assert urls is not None
    return urls


def _local(url: str) -> str:
    """The path and query of a link on the public base URL (the test client's host)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _get(server: Server, url: str, **kwargs: Any) -> httpx.Response:
    return await server.http.get(_local(url), **kwargs)


@pytest.fixture
async def version(server: Server, tmp_path: Path) -> AppVersion:
    return await store_app(server.services, tmp_path, version="2.1", build="57")


async def test_the_manifest_names_files_that_check_out(server: Server, version: AppVersion) -> None:
    answer = await _get(server, _urls(server).manifest_url(version.bundle_id, version.version_id))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    (item,) = plistlib.loads(answer.content)["items"]
    assert item["metadata"] == {
        "bundle-identifier": "com.example.expenses",
        "bundle-version": "2.1",
        "kind": "software",
        "title": "Expenses",
    }
    package, display, full_size = item["assets"]
    ipa = await _get(server, package["url"])
    assert ipa.status_code == 200
    assert ipa.headers["content-type"] == "application/octet-stream"
    assert hashlib.sha256(ipa.content).hexdigest() == package["sha256s"][0] == version.sha256
    assert len(ipa.content) == package["sha256-size"] == version.size
    assert ipa.content[:2] == b"PK"  # the zip we built
    for image in (display, full_size):
        png = await _get(server, image["url"])
        assert (png.status_code, png.headers["content-type"]) == (200, "image/png")
        assert png.content.startswith(PNG_SIGNATURE)


async def test_links_are_absolute_on_the_public_base_url(
    server: Server, version: AppVersion
) -> None:
    base = server.services.settings.base_url
    manifest_url = _urls(server).manifest_url(version.bundle_id, version.version_id)
    assert manifest_url.startswith(f"{base}/apps/manifest/com.example.expenses/")
    body = (await _get(server, manifest_url)).content
    for asset in plistlib.loads(body)["items"][0]["assets"]:
        assert asset["url"].startswith(f"{base}/apps/")


async def test_no_token_or_a_forged_one_is_refused(server: Server, version: AppVersion) -> None:
    ipa_url = _urls(server).ipa_url(version.sha256)
    path = urlsplit(ipa_url).path
    token = parse_qs(urlsplit(ipa_url).query)["t"][0]
    expiry, mac = token.split(".")
    cases = {
        path: "has no token",
        f"{path}?t=": "has no token",
        f"{path}?t=nonsense": "damaged",
        f"{path}?t={int(expiry) + 3600}.{mac}": "not one this server made",
        f"{path}?t={expiry}.{'A' * len(mac)}": "not one this server made",
    }
    with capture_logs() as logs:
        for url, says in cases.items():
            answer = await server.http.get(url)
            assert answer.status_code == 403, url
            assert says in answer.text
            assert b"PK" not in answer.content
    refused = [entry for entry in logs if entry["event"] == "app_link_refused"]
    assert len(refused) == len(cases)
    assert all(token not in str(entry) and mac not in str(entry) for entry in refused)


async def test_a_token_opens_only_its_own_path(server: Server, version: AppVersion) -> None:
    assert version.icon_sha256 is not None
    icon_token = _local(_urls(server).icon_url(version.icon_sha256)).split("?")[1]
    # The icon's token, put on the .ipa's path or on the icon's hash as an .ipa: refused.
    for path in (f"/apps/files/{version.sha256}.ipa", f"/apps/files/{version.icon_sha256}.ipa"):
        assert (await server.http.get(f"{path}?{icon_token}")).status_code == 403
    manifest = _local(_urls(server).manifest_url(version.bundle_id, version.version_id))
    other = manifest.replace(f"/{version.version_id}.plist", f"/{version.version_id + 1}.plist")
    assert (await server.http.get(other)).status_code == 403


async def test_an_expired_link_says_to_fetch_a_new_one(server: Server, version: AppVersion) -> None:
    fresh = _urls(server)
    hours_ago = datetime.now(UTC) - timedelta(hours=7)
    old = AppUrls(fresh.base_url, fresh.signer, fresh.ttl, lambda: hours_ago)
    for url in (
        old.manifest_url(version.bundle_id, version.version_id),
        old.ipa_url(version.sha256),
    ):
        answer = await _get(server, url)
        assert answer.status_code == 403
        assert "expired" in answer.text
        assert "Open the app catalog again" in answer.text


async def test_a_valid_link_to_something_gone_is_404(server: Server, version: AppVersion) -> None:
    urls = _urls(server)
    for url in (
        urls.ipa_url("f" * 64),
        urls.icon_url("e" * 64),
        urls.ipa_url("not-a-hash"),
        urls.manifest_url(version.bundle_id, version.version_id + 1),
        urls.manifest_url("com.example.unknown", 1),
    ):
        answer = await _get(server, url)
        assert answer.status_code == 404, url
        assert "no longer on this server" in answer.text


async def test_the_ipa_carries_its_hash_as_etag_and_answers_head(
    server: Server, version: AppVersion
) -> None:
    url = _local(_urls(server).ipa_url(version.sha256))
    head = await server.http.head(url)
    assert head.status_code == 200
    assert head.headers["etag"] == f'"{version.sha256}"'
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-length"] == str(version.size)
    assert head.content == b""


async def _whole_ipa(server: Server, version: AppVersion) -> tuple[str, bytes]:
    url = _local(_urls(server).ipa_url(version.sha256))
    return url, (await server.http.get(url)).content


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", None, None),
     ("bytes=10-10", 10, 10), ("bytes=5-999999999", 5, None), ("bytes=-999999999", 0, None)],
)  # fmt: skip
async def test_a_range_is_answered_206(
    server: Server, version: AppVersion, header: str, first: int | None, last: int | None
) -> None:
    url, whole = await _whole_ipa(server, version)
    size = len(whole)
    start = size - 50 if first is None else first
    end = size - 1 if last is None else last
    answer = await server.http.get(url, headers={"Range": header})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert answer.headers["content-length"] == str(end - start + 1)
    assert answer.content == whole[start : end + 1]


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=9-3", "items=0-5", "bytes=abc", "bytes=-", "bytes 0-5"]
)
async def test_a_range_to_ignore_gets_the_whole_file(
    server: Server, version: AppVersion, header: str
) -> None:
    url, whole = await _whole_ipa(server, version)
    answer = await server.http.get(url, headers={"Range": header})
    assert (answer.status_code, answer.content) == (200, whole)


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{far}", "bytes=-0"])
async def test_a_range_past_the_end_is_416(
    server: Server, version: AppVersion, header: str
) -> None:
    url, whole = await _whole_ipa(server, version)
    size = len(whole)
    answer = await server.http.get(url, headers={"Range": header.format(size=size, far=size + 9)})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{size}"


async def test_if_range_resumes_only_the_same_file(server: Server, version: AppVersion) -> None:
    url, whole = await _whole_ipa(server, version)
    same = {"Range": "bytes=10-", "If-Range": f'"{version.sha256}"'}
    resumed = await server.http.get(url, headers=same)
    assert (resumed.status_code, resumed.content) == (206, whole[10:])
    other = {"Range": "bytes=10-", "If-Range": '"another-file"'}
    restarted = await server.http.get(url, headers=other)
    assert (restarted.status_code, restarted.content) == (200, whole)


async def test_an_app_without_an_icon_has_a_plain_manifest(server: Server, tmp_path: Path) -> None:
    plain = await store_app(server.services, tmp_path, bundle_id="com.example.plain", icon=False)
    answer = await _get(server, _urls(server).manifest_url(plain.bundle_id, plain.version_id))
    (item,) = plistlib.loads(answer.content)["items"]
    assert [asset["kind"] for asset in item["assets"]] == ["software-package"]
