"""`orchardist admin …` and `orchardist token …` as an administrator runs them, checked
against a running server: the accounts sign in (or no longer can), the tokens work (or no
longer do)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.server import ORCHARDIST, orchardist, running_server

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("admin") / "data"
    orchardist(folder, "init", "--hostname", "mdm.test")
    return folder


@pytest.fixture(scope="module")
def base(data_dir: Path) -> Iterator[str]:
    with running_server(data_dir, http=True) as url:
        yield url


def run(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORCHARDIST, "--data-dir", str(data_dir), *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def sign_in(base: str, user: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base) as client:
        page = client.get("/console/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None
        form = {"user": user, "password": password, "csrf_token": found[1]}
        return client.post("/console/login", data=form)


def test_accounts_are_created_changed_disabled_and_enabled(data_dir: Path, base: str) -> None:
    made = run(data_dir, "admin", "create", "ann", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n")  # fmt: skip
    assert (made.returncode, made.stdout.strip()) == (0, "created ann (admin)"), made.stderr
    again = run(data_dir, "admin", "create", "ann", "--role", "viewer", "--password-stdin",
                stdin=PASSWORD + "\n")  # fmt: skip
    assert again.returncode == 1
    assert "exists already" in again.stderr
    for args, stdin, says in (
        (("bob", "--role", "viewer"), "short\n", "at least 12 characters"),
        (("bob", "--role", "boss"), PASSWORD + "\n", "unknown role 'boss'"),
        (("Bob!", "--role", "viewer"), PASSWORD + "\n", "not a valid account name"),
    ):
        refused = run(data_dir, "admin", "create", *args, "--password-stdin", stdin=stdin)
        assert refused.returncode == 1
        assert says in refused.stderr
    no_password = run(data_dir, "admin", "create", "bob", "--role", "viewer", stdin="")
    assert no_password.returncode == 1
    assert "--password-stdin" in no_password.stderr
    listed = json.loads(orchardist(data_dir, "admin", "list", "--json"))
    assert [(a["name"], a["role"], a["disabled_at"]) for a in listed] == [("ann", "admin", None)]

    assert sign_in(base, "ann", PASSWORD).status_code == 303
    new = "another long passphrase"
    changed = run(data_dir, "admin", "passwd", "ann", "--password-stdin", stdin=new + "\n")
    assert changed.returncode == 0, changed.stderr
    assert sign_in(base, "ann", PASSWORD).status_code == 401
    assert sign_in(base, "ann", new).status_code == 303
    assert orchardist(data_dir, "admin", "disable", "ann").strip() == "disabled ann"
    disabled = sign_in(base, "ann", new)
    assert disabled.status_code == 401
    assert "This account is disabled" in disabled.text
    assert run(data_dir, "admin", "disable", "nobody").returncode == 1
    assert "disabled" in orchardist(data_dir, "admin", "list")

    assert orchardist(data_dir, "admin", "enable", "ann").strip() == "enabled ann"
    assert sign_in(base, "ann", new).status_code == 303  # the password it had
    unknown = run(data_dir, "admin", "enable", "nobody")
    assert (unknown.returncode, "no account named 'nobody'" in unknown.stderr) == (1, True)
    listed = json.loads(orchardist(data_dir, "admin", "list", "--json"))
    assert [(a["name"], a["disabled_at"]) for a in listed] == [("ann", None)]
    entries = json.loads(orchardist(data_dir, "audit", "--action", "account.enable", "--json"))
    assert [(e["targets"], e["outcome"]) for e in entries] == [(["nobody"], "failed"),
                                                               (["ann"], "ok")]  # fmt: skip


def test_create_asks_twice_in_a_terminal(data_dir: Path) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([*ORCHARDIST, "--data-dir", str(data_dir), "admin", "create", "tty",
                             "--role", "operator"], stdin=terminal, stdout=terminal,
                            stderr=terminal)  # fmt: skip
    os.close(terminal)
    output = b""
    for answer in (PASSWORD, PASSWORD):
        output += _read_until(controller, b": ")
        os.write(controller, answer.encode() + b"\n")
    proc.wait(timeout=60)
    output += _read_until(controller, b"\n", closed_ok=True)
    os.close(controller)
    text = output.decode(errors="replace")
    assert "Password:" in text
    assert "Repeat for confirmation:" in text
    assert PASSWORD not in text  # never echoed
    assert proc.returncode == 0, text
    assert "tty" in orchardist(data_dir, "admin", "list")


def _read_until(fd: int, marker: bytes, *, closed_ok: bool = False) -> bytes:
    seen, deadline = b"", time.monotonic() + 60
    while marker not in seen and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the command exited and closed the terminal
            if closed_ok:
                break
            raise
        seen += chunk
    return seen


def test_tokens_are_listed_expire_and_are_revoked(data_dir: Path, base: str) -> None:
    made = json.loads(orchardist(data_dir, "token", "create", "--name", "ci", "--role",
                                 "viewer", "--expires-days", "3", "--json"))  # fmt: skip
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert httpx.get(f"{base}/api/v1/devices", headers=headers).status_code == 200
    listed = {t["name"]: t for t in json.loads(orchardist(data_dir, "token", "list", "--json"))}
    assert (listed["ci"]["role"], listed["ci"]["state"]) == ("viewer", "active")
    assert listed["admin"]["expires_at"] is None  # init's token: never
    assert made["token"] not in orchardist(data_dir, "token", "list")
    assert orchardist(data_dir, "token", "revoke", "ci").strip() == "revoked ci"
    refused = httpx.get(f"{base}/api/v1/devices", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    listed = {t["name"]: t for t in json.loads(orchardist(data_dir, "token", "list", "--json"))}
    assert listed["ci"]["state"] == "revoked"
    unknown = run(data_dir, "token", "revoke", "nobody")
    assert unknown.returncode == 1
    assert "no token named 'nobody'" in unknown.stderr
