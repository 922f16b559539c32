"""The app catalog at /apps through the ASGI app, with a real slapd: alice (in sales)
signs in and sees the app offered to sales, not the one offered to hr; bob (staff) sees
only what everyone sees; the Install link is an itms-services URL whose manifest checks
out against the .ipa; links expire; names and descriptions are escaped; sessions are the
enrollment site's kind but neither accepts the other's; sign-in shares /enroll's lock and
its attempt limit (429 with Retry-After)."""

from __future__ import annotations

import hashlib
import plistlib
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from orchardist.apps.catalog import PHASE, SESSION_TTL, form_token
from orchardist.apps.urls import AppUrls, manifest_subject
from orchardist.apps.webclip import catalog_web_clip
from orchardist.config import DirectorySettings
from orchardist.storage import OtaSession
from orchardist.storage.apps import AppVersion
from orchardist.storage.audit import AuditQuery
from orchardist.web.catalog_pages import readable_size
from tests.directory import slapd as ldap
from tests.web.console import browser
from tests.web.mdm_server import Server, running
from tests.web.stored_apps import store_app

pytestmark = pytest.mark.anyio
COOKIE = "orchardist_catalog"


@pytest.fixture(scope="module")
def directory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap.Slapd]:
    with ldap.running_slapd(tmp_path_factory.mktemp("slapd")) as running_directory:
        yield running_directory


@pytest.fixture
async def server(
    directory_server: ldap.Slapd, backend: str, tmp_path: Path
) -> AsyncIterator[Server]:
    password = SecretStr(ldap.SERVICE_PASSWORD)
    directory = DirectorySettings(
        url=directory_server.url, base_dn=ldap.BASE, bind_dn=ldap.SERVICE_DN,
        bind_password=password,
    )  # fmt: skip
    console = {"lockout_account_failures": 2}
    async with running(backend, tmp_path, directory=directory, console=console) as started:
        yield started


@pytest.fixture
async def expenses(server: Server, tmp_path: Path) -> AppVersion:
    return await store_app(
        server.services, tmp_path, groups=["sales"], description="Claim expenses.\nFast."
    )


@pytest.fixture
async def payroll(server: Server, tmp_path: Path) -> AppVersion:
    return await store_app(
        server.services, tmp_path, bundle_id="com.example.payroll", display_name="Payroll",
        groups=["hr"],
    )  # fmt: skip


async def _signed_in(client: httpx.AsyncClient, user: str) -> str:
    """Sign `user` in and return the catalog page."""
    answer = await client.post("/apps", data={"user": user, "password": ldap.PASSWORDS[user]})
    assert (answer.status_code, answer.headers["location"]) == (303, "/apps")
    page = await client.get("/apps")
    assert page.status_code == 200
    return page.text


def _install_links(page: str) -> list[str]:
    return [unescape(link) for link in re.findall(r'class=install href="([^"]+)"', page)]


def _icons(page: str) -> list[str]:
    return [unescape(src) for src in re.findall(r'<img src="([^"]+)"', page)]


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_the_sign_in_page_is_locked_down(server: Server) -> None:
    async with browser(server) as client:
        page = await client.get("/apps")
    assert page.status_code == 200
    assert '<form method=post action="/apps"' in page.text
    assert "App Catalog" in page.text  # settings.apps.catalog_title
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy  # no script at all
    assert page.headers["cache-control"] == "no-store"
    assert "<style" not in page.text
    assert "<script" not in page.text


async def test_a_sales_user_sees_the_sales_app_and_not_the_hr_one(
    server: Server, expenses: AppVersion, payroll: AppVersion
) -> None:
    async with browser(server) as client:
        answer = await client.post(
            "/apps", data={"user": "alice", "password": ldap.PASSWORDS["alice"]}
        )
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        for attribute in ("HttpOnly", "Path=/apps", "SameSite=lax", "Secure", "Max-Age="):
            assert attribute in cookie
        page = (await client.get("/apps")).text
    assert "Signed in as <b>alice</b>" in page
    assert f"Version 1.0 (1) · {readable_size(expenses.size)}" in page
    assert readable_size(expenses.size).endswith(" kB")  # the test .ipa is some kilobytes
    assert "Claim expenses.\nFast." in page
    assert "Payroll" not in page
    assert len(_install_links(page)) == 1
    async with browser(server) as client:
        page = await _signed_in(client, "bob")  # staff only
    assert "Expenses" not in page
    assert "Payroll" not in page
    assert "No apps are offered to you yet" in page


async def test_everyone_and_group_names_in_any_case(server: Server, tmp_path: Path) -> None:
    for bundle_id, groups in (("com.example.all", ["*"]), ("com.example.sales", ["SALES"]),
                              ("com.example.devsales", ["directory:Sales"]),
                              ("com.example.nobody", [])):  # fmt: skip
        await store_app(
            server.services, tmp_path, bundle_id=bundle_id, display_name=bundle_id, groups=groups
        )
    async with browser(server) as client:
        alice = await _signed_in(client, "alice")
    async with browser(server) as client:
        bob = await _signed_in(client, "bob")
    assert all(f"<h2>com.example.{n}</h2>" in alice for n in ("all", "sales", "devsales"))
    assert "com.example.nobody" not in alice
    assert "<h2>com.example.all</h2>" in bob
    assert "com.example.sales" not in bob


async def test_the_install_link_leads_to_a_manifest_that_checks_out(
    server: Server, expenses: AppVersion
) -> None:
    async with browser(server) as client:
        page = await _signed_in(client, "alice")
        (link,) = _install_links(page)
        parts = urlsplit(link)
        assert (parts.scheme, parts.netloc, parts.path) == ("itms-services", "", "")
        query = parse_qs(parts.query)
        assert query["action"] == ["download-manifest"]
        (manifest_url,) = query["url"]
        assert manifest_url.startswith(f"{server.services.settings.base_url}/apps/manifest/")
        # A device fetches the manifest, then the .ipa it names: no cookie needed.
        async with browser(server) as device:
            manifest = await device.get(_local(manifest_url))
            assert manifest.status_code == 200
            (item,) = plistlib.loads(manifest.content)["items"]
            assert item["metadata"]["bundle-identifier"] == "com.example.expenses"
            assert item["metadata"]["bundle-version"] == "1.0"
            package = item["assets"][0]
            ipa = await device.get(_local(package["url"]))
        assert hashlib.sha256(ipa.content).hexdigest() == package["sha256s"][0] == expenses.sha256
        (icon,) = _icons(page)
        assert icon.startswith("/apps/icons/")  # on this site, wherever the browser came from
        png = await client.get(icon)
        assert (png.status_code, png.headers["content-type"]) == (200, "image/png")


async def test_the_pages_links_expire(server: Server, expenses: AppVersion) -> None:
    async with browser(server) as client:
        (link,) = _install_links(await _signed_in(client, "alice"))
    manifest_url = parse_qs(urlsplit(link).query)["url"][0]
    token = parse_qs(urlsplit(manifest_url).query)["t"][0]
    urls = server.services.app_urls
    assert urls is not None
    subject = manifest_subject(expenses.bundle_id, expenses.version_id)
    later = datetime.now(UTC) + urls.ttl + timedelta(seconds=1)
    assert urls.signer.check(subject, token, later).reason == "expired"
    # The server refuses such a link: one made a TTL ago has just expired.
    made_earlier = datetime.now(UTC) - urls.ttl - timedelta(seconds=1)
    old = AppUrls(urls.base_url, urls.signer, urls.ttl, lambda: made_earlier)
    async with browser(server) as device:
        refused = await device.get(
            _local(old.manifest_url(expenses.bundle_id, expenses.version_id))
        )
    assert refused.status_code == 403
    assert "expired" in refused.text


async def test_names_and_descriptions_are_escaped(server: Server, tmp_path: Path) -> None:
    await store_app(
        server.services, tmp_path, bundle_id="com.example.xss",
        info_overrides={"CFBundleDisplayName": '<script>alert("name")</script>'},
        groups=["sales"],
        description='<img src=x onerror=alert(1)> "quoted" & more',
    )  # fmt: skip
    async with browser(server) as client:
        page = await _signed_in(client, "alice")
    assert "<script>" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &amp; more" in page


async def test_a_wrong_password_and_the_shared_lock(server: Server) -> None:
    async with browser(server) as client:
        wrong = await client.post("/apps", data={"user": "alice", "password": "wrong"})
        assert wrong.status_code == 401
        assert "unknown user or wrong password" in wrong.text
        assert COOKIE not in client.cookies
        # One failure here and one at /enroll: the account is locked for both.
        enroll = await client.post("/enroll", data={"user": "alice", "password": "wrong"})
        assert enroll.status_code == 429
        right = await client.post(
            "/apps", data={"user": "alice", "password": ldap.PASSWORDS["alice"]}
        )
        assert right.status_code == 429
        assert "Too many failed sign-ins" in right.text
        assert COOKIE not in client.cookies


async def test_sign_out_needs_the_pages_form_token(server: Server) -> None:
    async with browser(server) as client:
        await _signed_in(client, "alice")
        token = client.cookies[COOKIE]
        forged = await client.post("/apps/sign-out", data={"form_token": "guess"})
        assert forged.status_code == 403
        assert "nothing was changed" in forged.text
        assert "Signed in as" in (await client.get("/apps")).text
        done = await client.post("/apps/sign-out", data={"form_token": form_token(token)})
        assert (done.status_code, done.headers["location"]) == (303, "/apps")
        assert COOKIE not in client.cookies
    async with browser(server) as other:  # the old cookie, replayed, signs nobody in
        other.cookies.set(COOKIE, token, domain="mdm.test", path="/apps")
        assert "Signed in as" not in (await other.get("/apps")).text


async def test_a_new_sign_in_ends_the_session_the_browser_held(server: Server) -> None:
    async with browser(server) as client:
        await _signed_in(client, "bob")
        planted = client.cookies[COOKIE]
        await _signed_in(client, "alice")
        assert client.cookies[COOKIE] != planted
    async with browser(server) as other:
        other.cookies.set(COOKIE, planted, domain="mdm.test", path="/apps")
        assert "Signed in as" not in (await other.get("/apps")).text


async def test_enrollment_and_catalog_sessions_do_not_mix(server: Server) -> None:
    storage = server.services.storage
    now = datetime.now(UTC)
    digest = hashlib.sha256(b"expired-token").hexdigest()
    await storage.save_ota_session(
        OtaSession(digest, "alice", ("sales",), PHASE, now - SESSION_TTL, now)
    )
    async with browser(server) as client:
        client.cookies.set(COOKIE, "expired-token", domain="mdm.test", path="/apps")
        assert "Signed in as" not in (await client.get("/apps")).text
        # An enrollment session's token is no catalog session ...
        enrolling = await client.post(
            "/enroll", data={"user": "alice", "password": ldap.PASSWORDS["alice"]}
        )
        found = re.search(r'name=session value="([^"]+)"', enrolling.text)
        assert found is not None
        client.cookies.set(COOKIE, found[1], domain="mdm.test", path="/apps")
        assert "Signed in as" not in (await client.get("/apps")).text
        # ... and a catalog session cannot fetch an enrollment's Profile Service payload.
        await _signed_in(client, "alice")
        profile = await client.get("/enroll/profile", params={"session": client.cookies[COOKIE]})
        assert profile.status_code == 403


async def test_without_a_directory_the_catalog_says_so(tmp_path: Path) -> None:
    async with running("sqlite", tmp_path) as server, browser(server) as client:
        page = await client.get("/apps")
        assert "not set up on this server" in page.text
        assert "<form" not in page.text
        refused = await client.post("/apps", data={"user": "alice", "password": "x"})
        assert refused.status_code == 401
        assert "not set up on this server" in refused.text


async def test_style_and_icon_are_served(server: Server) -> None:
    async with browser(server) as client:
        css = await client.get("/apps/catalog.css")
        icon = await client.get("/apps/catalog-icon.png")
    assert css.headers["content-type"].startswith("text/css")
    assert ".app{" in css.text
    assert icon.headers["content-type"] == "image/png"
    assert icon.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 bytes"), (999, "999 bytes"), (1000, "1.0 kB"), (1_536_000, "1.5 MB"),
     (2_500_000_000, "2.5 GB")],
)  # fmt: skip
def test_sizes_read_as_ios_shows_them(size: int, shown: str) -> None:
    assert readable_size(size) == shown


async def _enrolled_by(server: Server, user: str, udid: str, index: int) -> None:
    """A device enrolled over the air by `user`, as the OTA flow leaves it."""
    device = await server.device(udid, index)
    await server.enroll(device)  # its Authenticate names serial number S1
    now = datetime.now(UTC)
    digest = hashlib.sha256(udid.encode()).hexdigest()
    await server.services.storage.save_ota_session(
        OtaSession(digest, user, ("sales",), "enrolled", now, now, device_id=udid)
    )


async def _install(client: httpx.AsyncClient, bundle_id: str) -> httpx.Response:
    token = form_token(client.cookies[COOKIE])
    return await client.post("/apps/install", data={"form_token": token, "bundle_id": bundle_id})


async def test_a_managed_install_on_the_users_one_enrolled_device(
    server: Server, expenses: AppVersion, payroll: AppVersion
) -> None:
    await _enrolled_by(server, "alice", "UDID-ALICE-1", 160)
    async with browser(server) as client:
        page = await _signed_in(client, "alice")
        assert "Install on S1 (managed)" in page
        answer = await _install(client, "com.example.expenses")
        assert answer.status_code == 303
        page = (await client.get(answer.headers["location"])).text
        assert "Expenses is on its way to S1" in page
        # Not offered to alice: refused, and nothing is sent.
        refused = await _install(client, payroll.bundle_id)
        assert refused.status_code == 409
        assert "not offered to you" in refused.text
        forged = await client.post("/apps/install", data={"bundle_id": expenses.bundle_id})
        assert forged.status_code == 403
    storage = server.services.storage
    sent = await storage.device_commands("UDID-ALICE-1", datetime.now(UTC))
    assert [c.request_type for c in sent].count("InstallApplication") == 1
    entries = await storage.audit_entries(AuditQuery(action="app.install"))
    assert [(e.actor, e.via.value, e.outcome.value, list(e.targets)) for e in entries] == [
        ("alice", "catalog", "failed", ["com.example.payroll", "UDID-ALICE-1"]),
        ("alice", "catalog", "ok", ["com.example.expenses", "UDID-ALICE-1"]),
    ]


async def test_no_managed_install_without_exactly_one_device(
    server: Server, expenses: AppVersion
) -> None:
    async with browser(server) as client:
        page = await _signed_in(client, "alice")  # no device yet
        assert "(managed)" not in page
        refused = await _install(client, expenses.bundle_id)
        assert refused.status_code == 409
        assert "exactly one device enrolled under your name" in refused.text
        await _enrolled_by(server, "alice", "UDID-ALICE-1", 160)
        await _enrolled_by(server, "alice", "UDID-ALICE-2", 161)
        page = (await client.get("/apps")).text
        assert "(managed)" not in page  # which of the two would it be?
    async with browser(server) as client:
        session_over = await client.post("/apps/install", data={"bundle_id": "x"})
        assert session_over.status_code == 401


async def test_the_web_clip_is_offered_at_enrollment(server: Server) -> None:
    """Assigned to directory:sales, the clip is named on a sales user's /enroll review page
    (and installed with the enrollment, as every profile assigned to the device's groups)."""
    settings = server.services.settings
    clip = catalog_web_clip(base_url=settings.base_url, title="App Catalog",
                            organization=settings.organization)  # fmt: skip
    library = server.services.profiles
    assert library is not None
    added = await library.add(clip)
    await library.assign(added.version.identifier, groups=["directory:sales"])
    alice = await server.http.post(
        "/enroll", data={"user": "alice", "password": ldap.PASSWORDS["alice"]}
    )
    assert "<li>App Catalog</li>" in alice.text
    bob = await server.http.post("/enroll", data={"user": "bob", "password": ldap.PASSWORDS["bob"]})
    assert bob.status_code == 200
    assert "App Catalog" not in bob.text


async def test_sign_in_attempts_share_enrolls_limit_and_say_when(
    directory_server: ldap.Slapd, backend: str, tmp_path: Path
) -> None:
    """Attempts count even with the right password, in one budget with /enroll; over it
    the page answers 429 with Retry-After and when to try again, and no session is made."""
    directory = DirectorySettings(
        url=directory_server.url, base_dn=ldap.BASE, bind_dn=ldap.SERVICE_DN,
        bind_password=SecretStr(ldap.SERVICE_PASSWORD),
    )  # fmt: skip
    limits = {"sign_in_attempts_per_user": 3, "sign_in_window_minutes": 15}
    async with (
        running(backend, tmp_path, directory=directory, enroll=limits) as started,
        browser(started) as client,
    ):
        right = {"user": "alice", "password": ldap.PASSWORDS["alice"]}
        assert (await client.post("/apps", data=right)).status_code == 303
        assert (await client.post("/enroll", data=right)).status_code == 200
        assert (await client.post("/apps", data=right)).status_code == 303
        client.cookies.clear()
        limited = await client.post("/apps", data=right)
        assert limited.status_code == 429
        assert "Too many sign-in attempts for this account: try again after" in limited.text
        assert 14 * 60 < int(limited.headers["Retry-After"]) <= 15 * 60
        assert COOKIE not in client.cookies
        # bob's budget is his own
        bob = {"user": "bob", "password": ldap.PASSWORDS["bob"]}
        assert (await client.post("/apps", data=bob)).status_code == 303
