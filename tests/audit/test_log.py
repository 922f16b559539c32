"""The AuditLog service: what it keeps of an entry, and what it never keeps."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import pytest

from orchardist.audit import Actor, AuditLog, AuditQuery, Outcome, Via
from orchardist.audit.safe import HIDDEN, is_secret_key
from orchardist.storage.memory import MemoryAuditStore

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def audit_log() -> AuditLog:
    return AuditLog(MemoryAuditStore(), lambda: NOW)


async def test_an_entry_says_who_what_targets_outcome_and_when() -> None:
    log = audit_log()
    await log.record(Actor.api_token("ci"), "device.retire", ["UDID-1"], Outcome.FAILED,
                     {"forget": True}, reason="no device UDID-1")  # fmt: skip
    (entry,) = await log.entries(AuditQuery())
    assert (entry.actor, entry.via, entry.action, entry.targets) == (
        "ci", Via.API, "device.retire", ("UDID-1",)
    )  # fmt: skip
    assert (entry.outcome, entry.reason, entry.at) == (Outcome.FAILED, "no device UDID-1", NOW)
    assert entry.detail == {"forget": True}


async def test_secrets_never_reach_the_log() -> None:
    log = audit_log()
    detail = {
        "identifier": "com.example.wifi",
        "Password": "hunter2",
        "params": {"UnlockToken": b"\x01\x02", "PIN": "123456", "Message": "Call IT"},
        "payloads": [{"wifi_password": "hunter2", "SSID_STR": "Office"}],
        "profile": b"<plist>hunter2</plist>",
        "note": "orch_abcdefTOKEN",
        "token_name": "ci",
    }
    await log.record(Actor.account("alice"), "profile.upload", ["com.example.wifi"],
                     detail=detail)  # fmt: skip
    (entry,) = await log.entries(AuditQuery())
    stored = json.dumps(entry.detail)
    assert "hunter2" not in stored
    assert "123456" not in stored
    assert "orch_" not in stored
    assert entry.detail["params"] == {"UnlockToken": HIDDEN, "PIN": HIDDEN, "Message": "Call IT"}
    assert entry.detail["profile"] == "(22 bytes)"
    assert (entry.detail["identifier"], entry.detail["token_name"]) == ("com.example.wifi", "ci")


@pytest.mark.parametrize("key", ["Password", "wifi_password", "UnlockToken", "bootstrap-token",
                                 "Passcode", "challenge", "PIN", "EncryptionKey", "link",
                                 "webhook_secret", "Passphrase"])  # fmt: skip
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["identifier", "token_name", "role", "request_type", "SSID_STR",
                                 "Message", "expires_at", "version"])  # fmt: skip
def test_plain_keys(key: str) -> None:
    assert not is_secret_key(key)


async def test_text_is_cleaned_and_bounded() -> None:
    log = audit_log()
    odd = "bad\x00\udcffname"  # a NUL, and a CLI argument that was not UTF-8
    detail = {"many": list(range(250)), odd: odd, "at": NOW}
    await log.record(Actor.local_user(), "group.set", [odd, "x" * 1000], Outcome.FAILED, detail,
                     reason="r" * 5000)  # fmt: skip
    (entry,) = await log.entries(AuditQuery())
    assert entry.targets[0] == "bad\ufffd\ufffdname"
    assert len(entry.targets[1]) == 255
    assert len(entry.reason or "") == 1000
    assert entry.detail["many"][-1] == "(and 150 more)"
    assert entry.detail["at"] == NOW.isoformat()
    json.dumps(entry.detail).encode("utf-8")  # storable as JSON on every backend


def test_the_cli_actor_is_the_os_user() -> None:
    actor = Actor.local_user()
    assert (actor.name, actor.via) == (f"cli:{getpass.getuser()}", Via.CLI)


async def test_an_action_is_required() -> None:
    with pytest.raises(ValueError, match="action"):
        await audit_log().record(Actor.api_token("ci"), "")
