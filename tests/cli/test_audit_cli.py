"""The CLI's changes in the audit log (as `cli:<OS user>`, failures with their reason, never
a secret), and `orchardist audit` reading it: filters, pages, a table, --json."""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_device_cli import cli
from tests.cli.test_profile_cli import WIFI
from tests.server import ORCHARDIST, orchardist

WIFI_SECRET = "wifi-secret-in-the-audit-test"
ACCOUNT_PASSWORD = "console-password-in-the-audit-test"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder where the CLI made a few changes, some refused; newest last."""
    folder = tmp_path_factory.mktemp("audit")
    data = folder / "data"
    orchardist(data, "init", "--hostname", "localhost")
    spec = folder / "office.toml"
    spec.write_text(WIFI)
    orchardist(data, "profile", "upload", str(spec), env={"OFFICE_WIFI_PASSWORD": WIFI_SECRET})
    secrets = folder / "secrets.json"
    created = json.loads(orchardist(data, "token", "create", "--name", "ci-bot", "--role",
                                    "operator", "--json"))  # fmt: skip
    challenge = json.loads(orchardist(data, "scep", "challenge", "--json"))["challenge"]
    link = orchardist(data, "enroll", "token").strip()
    secrets.write_text(json.dumps([created["token"], challenge, link.rsplit("/", 1)[-1]]))
    account = [*ORCHARDIST, "--data-dir", str(data), "admin", "create", "alice", "--role",
               "operator", "--password-stdin"]  # fmt: skip
    created_account = subprocess.run(account, input=ACCOUNT_PASSWORD + "\n", text=True,
                                     capture_output=True, check=False)  # fmt: skip
    assert created_account.returncode == 0, created_account.stderr
    assert cli(data, "group", "set", "lab", "NOPE").returncode == 1
    assert cli(data, "device", "erase", "UDID-GONE").returncode == 1
    sent = cli(data, "command", "send", "DeviceLock", "Message=hi", "--target", "NOPE")
    assert sent.returncode == 1
    return data


def _audit(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(orchardist(data_dir, "audit", "--json", *args))
    return entries


@pytest.fixture(scope="module")
def whole_log(data_dir: Path) -> str:
    """`orchardist audit --json` with no filter, as printed: the log does not change after
    the data_dir fixture, so the tests that read all of it share one run."""
    return orchardist(data_dir, "audit", "--json")


def test_cli_changes_are_recorded_as_the_os_user(whole_log: str) -> None:
    entries: list[dict[str, Any]] = json.loads(whole_log)
    seen = [(e["action"], e["targets"], e["outcome"]) for e in entries]
    assert seen == [
        ("command.queue", ["NOPE"], "failed"),
        ("command.queue", ["UDID-GONE"], "failed"),
        ("group.set", ["group:lab", "NOPE"], "failed"),
        ("account.create", ["alice"], "ok"),
        ("enrollment.link", [], "ok"),
        ("scep.challenge", [], "ok"),
        ("token.create", ["ci-bot"], "ok"),
        ("profile.upload", ["com.example.office"], "ok"),
    ]
    assert {(e["actor"], e["via"]) for e in entries} == {(f"cli:{getpass.getuser()}", "cli")}
    send, erase, group, account, link, challenge, token, upload = entries
    assert account["detail"] == {"role": "operator"}
    assert "unknown device" in send["reason"]
    assert erase["reason"] == "erasing a device cannot be undone"
    assert group["reason"] == "unknown device NOPE"
    assert token["detail"] == {"role": "operator"}
    assert upload["detail"]["version"] == 1
    assert upload["detail"]["payload_types"] == ["com.apple.wifi.managed"]
    assert {"expires_at"} <= set(challenge["detail"]) & set(link["detail"])


def test_no_secret_reaches_the_log(data_dir: Path, whole_log: str) -> None:
    token, challenge, link_token = json.loads((data_dir.parent / "secrets.json").read_text())
    written = whole_log + orchardist(data_dir, "audit", "--wide")
    for secret in (WIFI_SECRET, ACCOUNT_PASSWORD, token, challenge, link_token):
        assert secret not in written


def test_filters_and_pages(data_dir: Path, whole_log: str) -> None:
    assert [e["action"] for e in _audit(data_dir, "--outcome", "failed", "--limit", "2")] == [
        "command.queue", "command.queue"
    ]  # fmt: skip
    older = _audit(data_dir, "--outcome", "failed", "--before", str(json.loads(whole_log)[1]["id"]))
    assert [e["action"] for e in older] == ["group.set"]
    assert [e["targets"] for e in _audit(data_dir, "--target", "group:lab")] == [
        ["group:lab", "NOPE"]
    ]  # fmt: skip
    assert len(_audit(data_dir, "--action", "token.create", "--actor", "nobody")) == 0
    assert len(_audit(data_dir, "--since", "1h", "--until", "2999-01-01")) == 8
    assert _audit(data_dir, "--until", "2000-01-01T00:00:00+02:00") == []


def test_the_table(data_dir: Path) -> None:
    lines = orchardist(data_dir, "audit", "--limit", "3", "--wide").splitlines()
    header = next(line for line in lines if "actor" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "id", "at", "actor", "via", "action", "targets", "outcome"
    ]  # fmt: skip
    erase = next(line for line in lines if "UDID-GONE" in line)
    assert "failed: erasing a device cannot be undone" in erase
    assert f"cli:{getpass.getuser()}" in erase
    assert lines[-1].startswith("(the newest 3; older: --before ")


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("--since", "yesterday"), 1, "--since 'yesterday' is not a time"),
        (("--until", "2026-13-01"), 1, "--until '2026-13-01' is not a time"),
        (("--limit", "0"), 2, "--limit"),
        (("--limit", "1001"), 2, "--limit"),
        (("--before", "-3"), 2, "--before"),
        (("--outcome", "maybe"), 2, "--outcome"),
    ],
)
def test_bad_filters_are_refused(
    data_dir: Path, args: tuple[str, ...], code: int, said: str
) -> None:
    refused = cli(data_dir, "audit", *args)
    assert refused.returncode == code
    assert said in refused.stderr
