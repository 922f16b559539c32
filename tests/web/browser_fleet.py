"""What the console's browser test drives: a running `orchardist serve` (SQLite in its data
dir) with virtual devices that never poll — `orchardist simulate --apns-port` plays both
the devices and Apple's push service, so a device answers a command only when the server
pushed it — and Debian's Chromium through Playwright, signing in through the real form.

The accounts are made with `orchardist admin create … --password-stdin`, as an
administrator would; the API is read with the admin token `orchardist init --json` prints."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from playwright import sync_api as playwright

from tests.push.identity import push_identity, simulated_apns
from tests.server import ORCHARDIST, orchardist, running_server

# Never skipped: `make test` installs Debian's Chromium (Makefile DEBS) and Playwright.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
STATIC_CHALLENGE = "console-browser-static-challenge"
WAIT_SECONDS = 60.0  # generous for a loaded machine; every wait ends as soon as it can
T = TypeVar("T")


@dataclass(frozen=True)
class Device:
    udid: str
    serial: str
    name: str


@dataclass(frozen=True)
class Fleet:
    """The running server, its enrolled devices (named, as DeviceInformation told) and
    the admin API token, for reading what the console should show."""

    base: str
    data_dir: Path
    token: str
    devices: tuple[Device, ...]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=30, **kwargs)

    def read(self, path: str) -> Any:
        answer = self.api("GET", path)
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    def send(self, request_type: str, params: Mapping[str, Any], udids: list[str]) -> str:
        """Queue a command through the API (the server pushes it); its CommandUUID."""
        body = {"request_type": request_type, "params": dict(params), "targets": udids}
        queued = self.api("POST", "/api/v1/commands", json=body)
        assert queued.status_code == 201, queued.text
        uuid: str = queued.json()["command_uuid"]
        return uuid

    def acknowledged(self, command_uuid: str, devices: int) -> None:
        """Wait until `devices` targets of the command have acknowledged it."""

        def counts() -> bool:
            found = self.read(f"/api/v1/commands/{command_uuid}")["counts"]
            assert found["error"] == 0, found
            return bool(found["acknowledged"] == devices)

        until(counts, f"{devices} acknowledgements of {command_uuid}")

    def commands(self, udid: str, request_type: str) -> list[str]:
        """The CommandUUIDs of this type the device was ever sent, newest first."""
        listed = self.read(f"/api/v1/devices/{udid}/commands")
        return [c["command_uuid"] for c in listed if c["request_type"] == request_type]


def until(check: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """`check()` once it is truthy (polled every 0.2 s), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@contextmanager
def pushed_fleet(folder: Path, devices: int, accounts: Mapping[str, str]) -> Iterator[Fleet]:
    """A server with `accounts` (name → role, each with PASSWORD) and `devices` enrolled,
    push-woken virtual devices, each asked once for its DeviceInformation (so it has a
    name); the fleet must end without a failure."""
    data_dir = folder / "data"
    init = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    identity = push_identity(folder / "apple")
    apns = simulated_apns(identity, folder)
    env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC_CHALLENGE, **apns.env}
    profile = folder / "enroll.mobileconfig"
    setup: list[Callable[[], str]] = [
        partial(orchardist, data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
                "--key", str(identity.key_file)),
        partial(orchardist, data_dir, "enrollment-profile", "--static", "-o", str(profile),
                env=env),
        *(partial(orchardist, data_dir, "admin", "create", name, "--role", role,
                  "--password-stdin", stdin=PASSWORD + "\n") for name, role in accounts.items()),
    ]  # fmt: skip
    with ThreadPoolExecutor() as pool:  # independent commands, each mostly Python start-up
        list(pool.map(lambda run: run(), setup))
    log = folder / "simulate.log"  # a file, not a pipe nobody reads while tests run
    with running_server(data_dir, http=True, env=env) as base, log.open("w") as errors:
        simulator = subprocess.Popen(
            [*ORCHARDIST, "simulate", "--devices", str(devices), "--profile", str(profile),
             "--server", base, *apns.simulate_args, "--duration", "3600", "--json"],
            stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
        try:
            yield _named(Fleet(base, data_dir, init["admin_token"], ()), devices)
        finally:
            simulator.terminate()
            out, _ = simulator.communicate(timeout=60)
    assert simulator.returncode == 0, log.read_text()
    assert json.loads(out)["failures"] == []


def _named(fleet: Fleet, devices: int) -> Fleet:
    def enrolled() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = fleet.read("/api/v1/devices")
        return listed if sum(1 for d in listed if d["enrolled"]) == devices else []

    udids = [d["udid"] for d in until(enrolled, f"{devices} enrollments")]
    asked = fleet.send("DeviceInformation", {"Queries": ["DeviceName", "SerialNumber"]}, udids)
    fleet.acknowledged(asked, devices)
    known = sorted(fleet.read("/api/v1/devices"), key=lambda d: d["udid"])
    named = tuple(Device(d["udid"], d["serial_number"], d["device_name"]) for d in known)
    assert all(d.serial and d.name for d in named), named
    return Fleet(fleet.base, fleet.data_dir, fleet.token, named)


@contextmanager
def chromium() -> Iterator[playwright.Browser]:
    """Headless Debian Chromium (no sandbox: the suite may run as root in a container)."""
    assert Path(CHROMIUM).exists(), "no Chromium: `make test` installs Debian's"
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: playwright.Page, user: str, password: str = PASSWORD) -> None:
    """Fill the sign-in form the page shows (open it first) and submit it, as a person does."""
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


SESSION_COOKIE = "orchardist_session"


def session_id(context: playwright.BrowserContext) -> str | None:
    """The console session cookie this browser holds, if any."""
    held = [c["value"] for c in context.cookies() if c["name"] == SESSION_COOKIE]
    return held[0] if held else None


def set_session_id(context: playwright.BrowserContext, base: str, value: str) -> None:
    """Put a session cookie for the console at `base` in this browser, as the server sets
    one (or as an attacker would plant one)."""
    host = urlsplit(base).hostname or ""
    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": value, "domain": host, "path": "/console"}]
    )


def csrf_token(page: playwright.Page) -> str:
    """This session's CSRF token, from the page's sign-out form."""
    token = page.locator("form[action='/console/logout'] input[name=csrf_token]").input_value()
    assert token
    return token
