"""The admin console in headless Debian Chromium, against a running server with push-woken
virtual devices (issue 12's "Done when"): an admin signs in, reads the API's figures on
the dashboard, finds a device by its serial number, locks it and sees the device's
acknowledgement on its page; erasing asks for the device's name; a viewer sees no actions
and a forged POST is refused; and each abuse case — a POST without the CSRF token, a
planted session id, an open redirect through `next=`, brute force on sign-in, a session
ending in the middle of a form, a device name carrying `<script>` — is refused with a
clear message while nothing changes.

One server, one fleet and one Chromium serve the whole module; each test opens its own
browser contexts (cookie jars). The devices never poll, so an acknowledgement proves the
server pushed. The profile builder's step joins as one more test on the same fixtures
(see the end of this file)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest
from playwright import sync_api as playwright

from tests.web.browser_fleet import (
    Device,
    Fleet,
    chromium,
    csrf_token,
    pushed_fleet,
    session_id,
    set_session_id,
    sign_in,
    until,
)

DEVICES = 3  # one to lock, one to (not) erase, one for the viewer and the odd name
ACCOUNTS = {"ada": "admin", "vic": "viewer", "dana": "operator"}  # dana gets locked out
ACTIONS = ("Query now", "Push now", "Lock", "Clear passcode", "Erase")
# Dashboard labels, as the page shows them, and GET /api/v1/dashboard's keys.
FIGURES = {
    "Enrolled devices": "enrolled",
    "Seen in the last 24 h": "seen_24h",
    "Seen in the last 7 days": "seen_7d",
    "Stale (not seen for 7 days)": "stale",
    "Non-compliant": "non_compliant",
    "Commands pending": "commands_pending",
    "Commands failed in the last 24 h": "commands_failed_24h",
    "Failed profile installs": "profile_installs_failed",
    "Push certificate days left": "push_certificate_days_left",
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with pushed_fleet(tmp_path_factory.mktemp("console-browser"), DEVICES, ACCOUNTS) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright.Browser]:
    with chromium() as launched:
        yield launched


def signed_in(browser: playwright.Browser, fleet: Fleet, user: str) -> playwright.Page:
    """A new browser context (no cookies) where `user` signed in through /console/login."""
    page = browser.new_context(base_url=fleet.base).new_page()
    page.goto("/console/login")
    sign_in(page, user)
    assert urlsplit(page.url).path == "/console", page.url
    return page


def on_device_page(
    browser: playwright.Browser, fleet: Fleet, user: str, device: Device
) -> playwright.Page:
    """`user`, signed in in a new browser context, on the device's page."""
    page = signed_in(browser, fleet, user)
    shown = page.goto(f"/console/devices/{device.udid}")
    assert shown is not None
    assert shown.status == 200, shown.text()
    assert page.get_by_role("heading", level=1).inner_text() == device.name
    return page


def inert(page: playwright.Page) -> None:
    """Nothing a device said became markup: no inline script, no injected image."""
    assert page.locator("script:not([src]), img").count() == 0


def test_the_dashboard_shows_the_apis_figures(browser: playwright.Browser, fleet: Fleet) -> None:
    page = signed_in(browser, fleet, "ada")

    def read_together() -> tuple[dict[str, str], dict[str, int], dict[str, Any]] | None:
        before = fleet.read("/api/v1/dashboard")
        page.goto("/console")
        shown = {
            label: page.get_by_text(label, exact=True)
            .locator("xpath=ancestor-or-self::dt/following-sibling::dd")
            .inner_text()
            for label in FIGURES
        }
        table = page.get_by_role("table").filter(
            has=page.get_by_role("columnheader", name="OS version")
        )
        chart = {}
        for row in table.get_by_role("row").all()[1:]:
            version, count = row.get_by_role("cell").all_inner_texts()
            chart[version] = int(count)
        after = fleet.read("/api/v1/dashboard")
        del before["at"], after["at"]
        if before != after:  # a device answered in between: read again
            return None
        return shown, chart, before

    shown, chart, api = until(read_together, "a dashboard that stays put while read")
    assert shown == {label: str(api[key]) for label, key in FIGURES.items()}
    assert chart == api["os_versions"]
    assert sum(chart.values()) == DEVICES
    assert api["enrolled"] == DEVICES
    assert page.get_by_text("Signed in as ada (admin)").is_visible()
    page.context.close()


def test_find_by_serial_lock_and_see_the_acknowledgement(
    browser: playwright.Browser, fleet: Fleet
) -> None:
    device = fleet.devices[0]
    page = signed_in(browser, fleet, "ada")
    page.get_by_role("link", name="Devices", exact=True).click()
    page.get_by_label("Search").fill(device.serial)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**q={device.serial}**")
    serial = page.get_by_role("columnheader").all_inner_texts().index("Serial")
    rows = page.get_by_role("row").all()[1:]
    assert [r.get_by_role("cell").nth(serial).inner_text() for r in rows] == [device.serial]
    page.get_by_role("link", name=device.name, exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == device.name
    assert page.get_by_role("row", name="Serial").get_by_role("cell").inner_text() == device.serial
    for action in ACTIONS:  # an admin has them all
        assert page.get_by_role("button", name=action, exact=True).count() == 1, action

    page.get_by_label("Lock screen message").fill("Found at the front desk")
    page.get_by_label("Phone number").fill("+1 555 0100")
    page.get_by_role("button", name="Lock", exact=True).click()
    page.wait_for_url("**done=DeviceLock")
    assert "Done: DeviceLock" in page.get_by_role("status").inner_text()
    (locked,) = fleet.commands(device.udid, "DeviceLock")

    lock_row = page.get_by_role("row").filter(has=page.get_by_role("link", name="DeviceLock"))

    def acknowledged_on_the_page() -> bool:
        page.reload()
        return lock_row.get_by_role("cell").nth(1).inner_text() == "acknowledged"

    until(acknowledged_on_the_page, "the lock's acknowledgement on the device page")
    assert lock_row.get_by_role("link").get_attribute("href") == f"/console/commands/{locked}"
    (state,) = fleet.read(f"/api/v1/commands/{locked}")["targets"]
    assert (state["udid"], state["status"]) == (device.udid, "acknowledged")
    page.context.close()


def test_erase_asks_for_the_device_name(browser: playwright.Browser, fleet: Fleet) -> None:
    device = fleet.devices[1]
    page = on_device_page(browser, fleet, "ada", device)
    confirm = page.get_by_label("type the device name")
    assert device.name in page.locator("label[for=erase-name]").inner_text()

    page.get_by_role("button", name="Erase").click()  # nothing typed: the browser holds it
    assert confirm.evaluate("field => field.validity.valueMissing") is True
    assert urlsplit(page.url).path == f"/console/devices/{device.udid}"

    confirm.fill(device.name + "x")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Erase").click()
    assert answer.value.status == 422
    assert page.get_by_role("heading", level=1).inner_text() == "Not erased"
    alert = page.get_by_role("alert").inner_text()
    assert device.name in alert
    assert "Nothing was sent." in alert
    assert fleet.commands(device.udid, "EraseDevice") == []
    page.context.close()


def test_a_viewer_has_no_actions_and_a_forged_post_is_refused(
    browser: playwright.Browser, fleet: Fleet
) -> None:
    device = fleet.devices[2]
    page = on_device_page(browser, fleet, "vic", device)
    assert page.get_by_role("heading", name="Actions").count() == 0
    for action in ACTIONS:
        assert page.get_by_role("button", name=action, exact=True).count() == 0, action
    token = csrf_token(page)
    for action, form in (("lock", {"message": "forged"}), ("erase", {"confirm_name": device.name})):
        forged = page.request.post(
            f"/console/devices/{device.udid}/{action}", form={"csrf_token": token, **form}
        )
        assert forged.status == 403, forged.text()
        assert "Not allowed" in forged.text()
    assert fleet.commands(device.udid, "DeviceLock") == []
    assert fleet.commands(device.udid, "EraseDevice") == []
    denied = fleet.read("/api/v1/audit?actor=vic&outcome=denied")
    assert {(e["action"], *e["targets"]) for e in denied} == {
        (f"devices.{action}", f"/console/devices/{device.udid}/{action}")
        for action in ("lock", "erase")
    }
    page.context.close()


def test_a_post_without_the_sessions_token_changes_nothing(
    browser: playwright.Browser, fleet: Fleet
) -> None:
    device = fleet.devices[2]
    page = on_device_page(browser, fleet, "ada", device)
    lock_form = page.locator("form").filter(has=page.get_by_role("button", name="Lock", exact=True))
    lock_form.locator("input[name=csrf_token]").evaluate("field => { field.value = 'guessed' }")
    page.get_by_label("Lock screen message").fill("from a forged form")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Lock", exact=True).click()
    assert answer.value.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "This form could not be verified"
    assert "nothing was changed" in page.get_by_role("alert").inner_text()
    bare = page.request.post(f"/console/devices/{device.udid}/lock", form={"message": "x"})
    assert bare.status == 403
    assert fleet.commands(device.udid, "DeviceLock") == []
    page.context.close()


def test_a_planted_session_id_is_never_used(browser: playwright.Browser, fleet: Fleet) -> None:
    attacker = signed_in(browser, fleet, "vic")
    live = session_id(attacker.context)
    assert live is not None
    for planted in (live, "made-up-by-the-attacker"):
        victim = browser.new_context(base_url=fleet.base)
        set_session_id(victim, fleet.base, planted)
        page = victim.new_page()
        page.goto("/console/login")
        sign_in(page, "ada")
        assert urlsplit(page.url).path == "/console"
        assert session_id(victim) not in (planted, None)
        victim.close()
    attacker.goto("/console")  # the planted live session was ended, not taken over
    assert urlsplit(attacker.url).path == "/console/login"
    assert "Your session has ended" in attacker.get_by_role("status").inner_text()
    attacker.context.close()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console"])
def test_next_never_leaves_the_console(
    browser: playwright.Browser, fleet: Fleet, target: str
) -> None:
    context = browser.new_context(base_url=fleet.base)
    asked: list[str] = []
    context.on("request", lambda request: asked.append(request.url))
    page = context.new_page()
    page.goto(f"/console/login?next={target}")
    sign_in(page, "ada")
    assert page.url == f"{fleet.base}/console"
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert not [url for url in asked if "evil.example" in urlsplit(url).netloc]
    context.close()


def test_brute_force_locks_the_account(browser: playwright.Browser, fleet: Fleet) -> None:
    page = browser.new_context(base_url=fleet.base).new_page()
    page.goto("/console/login")
    statuses = []
    for attempt in range(5):
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            sign_in(page, "dana", f"guess number {attempt}")
        statuses.append(answer.value.status)
    assert statuses == [401, 401, 401, 401, 429]
    alert = page.get_by_role("alert").inner_text()
    assert alert.startswith("Too many failed sign-ins for this account: try again after")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        sign_in(page, "dana")  # the right password, while locked
    assert answer.value.status == 429
    assert urlsplit(page.url).path == "/console/login"
    assert "Too many failed sign-ins for this account" in page.get_by_role("alert").inner_text()
    assert session_id(page.context) is None
    page.context.close()


def test_a_session_ending_mid_form_changes_nothing(
    browser: playwright.Browser, fleet: Fleet
) -> None:
    """Signed out in another tab (the cookie is gone), or ended on the server while this
    browser still holds it (as a timeout does): the half-filled form sends the person to
    sign in, told that nothing was changed, and back to the device page after."""
    device = fleet.devices[0]
    before = fleet.commands(device.udid, "DeviceLock")
    for elsewhere in ("another tab", "another browser"):
        page = on_device_page(browser, fleet, "ada", device)
        page.get_by_label("Lock screen message").fill(f"signed out in {elsewhere}")
        if elsewhere == "another tab":
            other = page.context.new_page()
        else:
            other = browser.new_context(base_url=fleet.base).new_page()
            held = session_id(page.context)
            assert held is not None
            set_session_id(other.context, fleet.base, held)
        other.goto("/console")
        other.get_by_role("button", name="Sign out").click()
        other.wait_for_url("**/console/login?signed_out=1")
        page.get_by_role("button", name="Lock", exact=True).click()
        page.wait_for_url("**/console/login?**")
        assert (
            "Your session has ended, so nothing was changed"
            in page.get_by_role("status").inner_text()
        ), elsewhere
        sign_in(page, "ada")
        assert urlsplit(page.url).path == f"/console/devices/{device.udid}", elsewhere
        page.context.close()
        other.context.close()
    assert fleet.commands(device.udid, "DeviceLock") == before


def test_a_device_name_with_script_and_quotes_is_text(
    browser: playwright.Browser, fleet: Fleet
) -> None:
    """The device itself takes the name (a Settings command) and reports it to the next
    DeviceInformation, as an iPhone named by its user would."""
    device = fleet.devices[2]
    odd = """<script>alert("named")</script> O'Hara's "iPad" <img src=x onerror=alert(1)>"""
    renamed = fleet.send("Settings", {"Settings": [{"Item": "DeviceName", "DeviceName": odd}]},
                         [device.udid])  # fmt: skip
    fleet.acknowledged(renamed, 1)
    asked = fleet.send("DeviceInformation", {"Queries": ["DeviceName"]}, [device.udid])
    fleet.acknowledged(asked, 1)
    assert fleet.read(f"/api/v1/devices/{device.udid}")["device_name"] == odd

    page = signed_in(browser, fleet, "ada")
    dialogs: list[str] = []

    def record(dialog: playwright.Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto(f"/console/devices?q={device.serial}")
    assert page.get_by_role("link", name=odd, exact=True).count() == 1
    inert(page)
    page.get_by_role("link", name=odd, exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == odd
    assert page.title() == f"{odd} · Orchardist"
    assert odd in page.locator("label[for=erase-name]").inner_text()
    inert(page)
    page.goto(f"/console/commands/{asked}")
    page.get_by_text("plist", exact=True).click()  # the answer, as the device sent it (XML)
    assert f"<string>{escape(odd)}</string>" in page.locator("pre").inner_text()
    inert(page)
    page.goto("/console/audit")  # the Settings command's entry names the device
    inert(page)
    assert dialogs == []
    page.context.close()


def test_build_a_wifi_and_passcode_profile_assign_it_to_a_group_and_see_it_installed(
    browser: playwright.Browser, fleet: Fleet
) -> None:
    """The builder's forms from Apple's schema, its live preview, Save into the library;
    then the profile's page assigns it to a group and shows each member install it (the
    devices are pushed: they never poll). A viewer never sees the Wi-Fi password."""
    members = [device.udid for device in fleet.devices[:2]]
    grouped = fleet.api("PUT", "/api/v1/groups/sales", json={"devices": members})
    assert grouped.status_code == 200, grouped.text
    password = "correct-horse-sales-wifi"
    page = signed_in(browser, fleet, "ada")
    page.get_by_role("link", name="Profiles", exact=True).click()
    page.get_by_role("link", name="New profile").click()
    page.get_by_label("Identifier").fill("com.example.sales-wifi")
    page.get_by_label("Display name").fill("Sales Wi-Fi")
    page.get_by_label("Payload type").select_option("com.apple.wifi.managed")
    page.get_by_role("button", name="Add payload").click()
    page.get_by_label("SSID", exact=True).fill("Sales")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Encryption Type").select_option("WPA2")
    page.get_by_label("Payload type").select_option("com.apple.mobiledevice.passwordpolicy")
    page.get_by_role("button", name="Add payload").click()
    assert page.get_by_label("SSID", exact=True).input_value() == "Sales"  # kept
    page.get_by_label("Minimum Passcode Length").fill("6")
    preview = page.locator("#builder-preview")
    until(lambda: "minLength" in preview.inner_text(), "the live preview with both payloads")
    assert "<string>Sales</string>" in preview.inner_text()
    page.get_by_role("button", name="Save to the library").click()
    page.wait_for_url("**/console/profiles/com.example.sales-wifi?done=saved**")

    page.get_by_label("sales", exact=True).check()
    page.get_by_role("button", name="Assign", exact=True).click()
    page.wait_for_url("**/console/profiles/com.example.sales-wifi**")
    installed = page.locator("#device-status td.state-installed")

    def both_installed() -> bool:
        page.reload()
        return installed.count() == len(members)

    until(both_installed, "the profile installed on both members of sales")
    status = fleet.read("/api/v1/profiles/com.example.sales-wifi/status")
    assert sorted((row["udid"], row["state"]) for row in status) == [
        (udid, "installed") for udid in sorted(members)
    ]
    page.goto(f"/console/devices/{members[0]}")
    link = page.get_by_role("link", name="com.example.sales-wifi")
    row = page.get_by_role("row").filter(has=link)
    assert row.get_by_role("cell").nth(1).inner_text() == "installed"
    page.context.close()

    viewer = signed_in(browser, fleet, "vic")
    for path in ("/console/profiles", "/console/profiles/com.example.sales-wifi"):
        viewer.goto(path)
        assert password not in viewer.content()
    assert viewer.get_by_role("button", name="Assign", exact=True).count() == 0
    viewer.context.close()
