"""Screenshots of every console page, at desktop and tablet width, into docs/console/.

It runs what an admin would: `orchardist init`, a stand-in push certificate, `orchardist
serve`, a few virtual devices woken by the local APNs peer (`orchardist simulate
--apns-port`), an account, a group, a profile assigned to it and a lock, then signs in with
Debian's Chromium and photographs each page. Run with `make screenshots`; nothing leaves
127.0.0.1 and the data folder is a temporary one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from orchardist.mdm import builders

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "console"
ORCHARDIST = [sys.executable, "-m", "orchardist"]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "screenshots only, not a real password"
DEVICES = 6
WIDTHS = {"desktop": (1280, 800), "tablet": (820, 1180)}
STATIC = "screenshots-static-challenge"
SPEC = """identifier = "com.example.office-wifi"
name = "Office Wi-Fi"
organization = "Example Corp"

[[payloads]]
type = "wifi"
SSID_STR = "Office"
EncryptionType = "WPA2"
Password = "not-a-real-password"
"""


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="orchardist-shots-") as tmp:
        work = Path(tmp)
        with fleet(work) as (base, token):
            seed(base, token, work)
            shoot(base, pages(base, token))
    print(f"wrote {len(list(OUT.glob('*.png')))} screenshots to {OUT.relative_to(ROOT)}")


def run(data: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data), *args],
        input=stdin, capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"orchardist {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fleet(work: Path) -> Iterator[tuple[str, str]]:
    """A server and DEVICES push-woken virtual devices; yields its URL and an admin token."""
    data = work / "data"
    token = json.loads(run(data, "init", "--hostname", "localhost", "--json"))["admin_token"]
    run(data, "pushcert", "test-cert", "--dir", str(work))
    peer_port, port = free_port(), free_port()
    env = {
        "ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC,
        "ORCHARDIST_APNS_URL": f"https://127.0.0.1:{peer_port}",
        "ORCHARDIST_APNS_CA_FILE": str(work / "apns-peer-ca.pem"),
    }
    profile = work / "enroll.mobileconfig"
    run(data, "enrollment-profile", "--static", "-o", str(profile), env=env)
    run(data, "admin", "create", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    base = f"http://127.0.0.1:{port}"
    serve_args = ["serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
    simulate_args = [
        "simulate", "--devices", str(DEVICES), "--profile", str(profile), "--server", base,
        "--apns-port", str(peer_port), "--apns-client-ca", str(work / "apns-test-ca.pem"),
        "--apns-ca-out", str(work / "apns-peer-ca.pem"), "--duration", "600",
    ]  # fmt: skip
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [*ORCHARDIST, "--data-dir", str(data), *serve_args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env},
    )  # fmt: skip
    devices = None
    try:
        wait(lambda: _answers(f"{base}/healthz"), "the server")
        devices = subprocess.Popen(
            [*ORCHARDIST, "--data-dir", str(data), *simulate_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield base, token
    finally:
        for process in (devices, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
        log.close()


def seed(base: str, token: str, work: Path) -> None:
    """What makes the pages worth a look: enrolled devices with inventory, a group with a
    profile installed, and a lock acknowledged."""
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    wait(lambda: len(enrolled(api)) == DEVICES, f"{DEVICES} enrollments")
    udids = enrolled(api)
    for what in (*builders.INVENTORY, "restrictions"):
        request_type, params = builders.QUERIES[what]
        asked = {"request_type": request_type, "params": params, "targets": {"all": True}}
        api.post("/api/v1/commands", json=asked).raise_for_status()
    answer = api.put("/api/v1/groups/sales", json={"devices": udids[:4]})
    answer.raise_for_status()
    spec = work / "office-wifi.toml"
    spec.write_text(SPEC)
    made = work / "office-wifi.mobileconfig"
    run(work / "data", "profile", "build", str(spec), "-o", str(made))
    api.post("/api/v1/profiles", content=made.read_bytes()).raise_for_status()
    assigned = api.post(
        "/api/v1/profiles/com.example.office-wifi/assignments", json={"groups": ["sales"]}
    )
    assigned.raise_for_status()
    lock = {"request_type": "DeviceLock", "params": {"Message": "Return to IT, please"},
            "targets": udids[:1]}  # fmt: skip
    locked = api.post("/api/v1/commands", json=lock)
    locked.raise_for_status()
    history = f"/api/v1/devices/{udids[0]}/commands"
    wait(
        lambda: all(c["status"] == "acknowledged" for c in api.get(history).json()),
        "the lock and the queries acknowledged",
    )
    status = "/api/v1/profiles/com.example.office-wifi/status"
    wait(
        lambda: sum(row["state"] == "installed" for row in api.get(status).json()) == 4,
        "the profile installed on the group",
    )


def pages(base: str, token: str) -> dict[str, str]:
    """Each page to photograph, by the file name it is saved under."""
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    udid = enrolled(api)[0]
    commands = api.get(f"/api/v1/devices/{udid}/commands").json()
    command = next(c["command_uuid"] for c in commands if c["request_type"] == "DeviceLock")
    return {
        "dashboard": "/console",
        "devices": "/console/devices",
        "device": f"/console/devices/{udid}",
        "commands": "/console/commands",
        "command": f"/console/commands/{command}",
        "profiles": "/console/profiles",
        "profile": "/console/profiles/com.example.office-wifi",
        "builder": "/console/profiles/new",
        "groups": "/console/groups",
        "group": "/console/groups/sales",
        "enrollment": "/console/enrollment",
        "pushcert": "/console/pushcert",
        "accounts": "/console/accounts",
        "audit": "/console/audit",
    }


def shoot(base: str, shots: dict[str, str]) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            sign_in(page, base)
            for width, (x, y) in WIDTHS.items():
                page.set_viewport_size({"width": x, "height": y})
                for name, path in shots.items():
                    answer = page.goto(base + path)
                    if answer is None or answer.status != 200:
                        raise SystemExit(f"{path}: {answer.status if answer else 'no answer'}")
                    if name == "builder":
                        fill_builder(page)
                    page.screenshot(path=str(OUT / f"{name}-{width}.png"), full_page=True)
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{base}/console/login*")
            for width, (x, y) in WIDTHS.items():
                page.set_viewport_size({"width": x, "height": y})
                page.screenshot(path=str(OUT / f"sign-in-{width}.png"), full_page=True)
        finally:
            browser.close()


def fill_builder(page: Page) -> None:
    """The builder with a Wi-Fi payload being filled in, its problems and preview shown."""
    page.get_by_label("Identifier").fill("com.example.guest-wifi")
    page.get_by_label("Display name").fill("Guest Wi-Fi")
    page.get_by_label("Payload type").select_option("com.apple.wifi.managed")
    page.get_by_role("button", name="Add payload").click()
    page.get_by_label("SSID", exact=True).fill("Guest")
    page.get_by_label("Encryption Type").select_option("WPA2")
    page.get_by_role("button", name="Check").click()
    page.wait_for_selector("#builder-preview")


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console")


def enrolled(api: httpx.Client) -> list[str]:
    return sorted(d["udid"] for d in api.get("/api/v1/devices").json() if d["enrolled"])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait(ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
