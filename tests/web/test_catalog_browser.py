"""The app catalog in a phone-sized headless Debian Chromium against a running `orchardist
serve` with a real slapd: alice (sales) signs in through the form at /apps and sees the
app offered to sales with its icon drawn, not the one offered to hr, and the Install link
is an itms-services URL; then, as a device would over real HTTP, its manifest checks out
and the .ipa downloads in two ranges whose bytes hash to the manifest's sha256s.

The apps are stored into the server's data dir (file store and SQLite) from this process,
as an upload leaves them. Never skipped: `make test` installs Chromium and Playwright."""

from __future__ import annotations

import asyncio
import hashlib
import plistlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import ViewportSize

from orchardist.config import load_settings
from orchardist.storage.apps import AppVersion
from orchardist.wiring import open_services
from tests.directory import slapd as ldap
from tests.server import free_port, orchardist, running_server
from tests.web.browser_fleet import chromium
from tests.web.stored_apps import store_app

PHONE: ViewportSize = {"width": 390, "height": 844}  # an iPhone 14's, in CSS pixels


@dataclass(frozen=True)
class Site:
    base: str
    expenses: AppVersion


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("catalog")
    data_dir, port = folder / "data", free_port()
    orchardist(data_dir, "init", "--hostname", "localhost")
    with ldap.running_slapd(folder / "slapd") as directory:
        with (data_dir / "orchardist.toml").open("a") as config:
            config.write(
                f'\n[directory]\nurl = "{directory.url}"\nbase_dn = "{ldap.BASE}"\n'
                f'bind_dn = "{ldap.SERVICE_DN}"\nbind_password = "{ldap.SERVICE_PASSWORD}"\n'
            )
        expenses = asyncio.run(_store_apps(data_dir, folder))
        public = {"ORCHARDIST_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        with running_server(data_dir, http=True, port=port, env=public) as base:
            yield Site(base, expenses)


async def _store_apps(data_dir: Path, folder: Path) -> AppVersion:
    services = await open_services(load_settings(data_dir))
    try:
        expenses = await store_app(
            services, folder, groups=["sales"], description="Claim your expenses on the go."
        )
        await store_app(
            services, folder, bundle_id="com.example.payroll", display_name="Payroll",
            groups=["hr"],
        )  # fmt: skip
    finally:
        await services.close()
    return expenses


def test_a_sales_user_signs_in_on_a_phone_and_sees_the_app(site: Site) -> None:
    problems: list[str] = []
    with chromium() as browser:
        phone = browser.new_context(
            viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True
        )
        page = phone.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
        page.goto(f"{site.base}/apps")
        page.fill("#user", "alice")
        page.fill("#password", ldap.PASSWORDS["alice"])
        page.click("button[type=submit]")
        card = page.locator("section.card", has_text="Expenses")
        card.wait_for(timeout=20_000)
        assert page.locator("section.card", has_text="Payroll").count() == 0
        icon = card.locator("img")
        page.wait_for_function("i => i.complete", arg=icon.element_handle())
        assert icon.evaluate("i => i.naturalWidth") > 0
        assert icon.evaluate("i => i.getBoundingClientRect().width") == 60
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # nothing wider than the phone
        link = card.locator("a.install").get_attribute("href")
    assert problems == []  # no refused style, image or policy violation
    assert link is not None
    assert link.startswith("itms-services://?action=download-manifest&url=http")
    _install_as_a_device_would(link, site)


def _install_as_a_device_would(link: str, site: Site) -> None:
    (manifest_url,) = parse_qs(urlsplit(link).query)["url"]
    assert manifest_url.startswith(f"{site.base}/apps/manifest/com.example.expenses/")
    manifest = httpx.get(manifest_url, timeout=30)
    assert manifest.status_code == 200
    (item,) = plistlib.loads(manifest.content)["items"]
    assert item["metadata"]["bundle-identifier"] == "com.example.expenses"
    assert item["metadata"]["bundle-version"] == "1.0"
    package = item["assets"][0]
    size = package["sha256-size"]
    head = httpx.head(package["url"], timeout=30)
    assert head.headers["content-length"] == str(size)
    first = httpx.get(package["url"], headers={"Range": f"bytes=0-{size // 2 - 1}"}, timeout=30)
    rest = httpx.get(package["url"], headers={"Range": f"bytes={size // 2}-"}, timeout=30)
    assert (first.status_code, rest.status_code) == (206, 206)
    downloaded = first.content + rest.content
    assert hashlib.sha256(downloaded).hexdigest() == package["sha256s"][0] == site.expenses.sha256
