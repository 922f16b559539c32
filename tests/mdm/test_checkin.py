"""Check-in messages, read from real devices' captures."""

from __future__ import annotations

import plistlib

import pytest

from orchardist.mdm.checkin import CheckinError, MessageType, parse_checkin
from tests.captures import capture

COMMANDMENT = "cmdmnt_commandment/testdata"
NANOMDM = "micromdm_nanomdm/mdm/testdata"

AUTHENTICATE = [
    f"{COMMANDMENT}/Authenticate/10.11.x.xml",
    f"{COMMANDMENT}/Authenticate/10.12.2.xml",
    f"{COMMANDMENT}/Authenticate/IOS-11.3.1.xml",
    f"{COMMANDMENT}/Authenticate/IOS-9.x.xml",
    f"{COMMANDMENT}/Authenticate/iOS-11.3.1-cell.xml",
    f"{NANOMDM}/Authenticate.1.plist",
    f"{NANOMDM}/Authenticate.2.plist",
]
TOKEN_UPDATE = [
    f"{COMMANDMENT}/TokenUpdate/10.11.x-user.plist",
    f"{COMMANDMENT}/TokenUpdate/10.12.2.xml",
    f"{COMMANDMENT}/TokenUpdate/10.12.2-user.xml",
    f"{NANOMDM}/TokenUpdate.1.plist",
    f"{NANOMDM}/TokenUpdate.2.plist",
]


@pytest.mark.parametrize("name", AUTHENTICATE)
def test_authenticate_captures(name: str) -> None:
    checkin = parse_checkin(capture(name))
    assert checkin.message_type == MessageType.AUTHENTICATE
    assert checkin.device_id
    assert checkin.get("Topic")  # com.apple.mgmt.… in real use; some captures are scrubbed


def test_authenticate_fields_of_an_iphone_with_cellular() -> None:
    checkin = parse_checkin(capture(f"{COMMANDMENT}/Authenticate/iOS-11.3.1-cell.xml"))
    assert checkin.get("OSVersion") == "11.3.1"
    assert checkin.get("IMEI")
    assert checkin.user_id is None


@pytest.mark.parametrize("name", TOKEN_UPDATE)
def test_token_update_captures(name: str) -> None:
    checkin = parse_checkin(capture(name))
    assert checkin.message_type == MessageType.TOKEN_UPDATE
    assert checkin.token
    assert checkin.push_magic


def test_token_update_with_unlock_token_and_user_channel() -> None:
    device = parse_checkin(capture(f"{NANOMDM}/TokenUpdate.1.plist"))
    assert device.unlock_token is not None
    assert device.unlock_token.startswith(b"DATA")
    assert device.device_id == "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
    user = parse_checkin(capture(f"{COMMANDMENT}/TokenUpdate/10.12.2-user.xml"))
    assert user.user_id
    assert user.unlock_token is None


@pytest.mark.parametrize("name", ["CheckOut/10.11.x.xml", "CheckOut/iOS-11.3.1.xml"])
def test_check_out_captures(name: str) -> None:
    assert parse_checkin(capture(f"{COMMANDMENT}/{name}")).message_type == MessageType.CHECK_OUT


def test_the_redacted_capture_is_refused_cleanly() -> None:
    """Upstream replaced its <data> with "Base64=", which is not base64."""
    with pytest.raises(CheckinError, match="malformed plist"):
        parse_checkin(capture(f"{COMMANDMENT}/TokenUpdate/iOS-11.3.1.xml"))


ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b"<plist><string>&b;</string></plist>"
)


def _plist(**fields: object) -> bytes:
    return plistlib.dumps(fields)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"<plist><dict><key>MessageType</key>", "malformed plist"),
        (b"\x00\x01garbage", "malformed plist"),
        (plistlib.dumps(["not", "a", "dict"]), "not a dictionary"),
        (_plist(UDID="x"), "MessageType is missing"),
        (_plist(MessageType="Hello", UDID="x"), "unknown MessageType 'Hello'"),
        (_plist(MessageType="Authenticate", UDID="x"), "without Topic"),
        (_plist(MessageType="Authenticate", Topic="t"), "neither UDID nor EnrollmentID"),
        (_plist(MessageType="TokenUpdate", UDID="x", Topic="t", PushMagic="m"), "without Token"),
        (_plist(MessageType="TokenUpdate", UDID="x", Topic="t", PushMagic="m", Token="s"), "Token"),
        (_plist(MessageType="Authenticate", UDID=7, Topic="t"), "UDID must be a non-empty string"),
        (ENTITY_BOMB, "malformed plist"),
    ],
)
def test_bad_checkins_give_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(CheckinError, match=reason):
        parse_checkin(body)


def test_user_enrollment_is_known_by_enrollment_id() -> None:
    checkin = parse_checkin(_plist(MessageType="Authenticate", EnrollmentID="E-1", Topic="t"))
    assert checkin.device_id == "E-1"
