"""Bad specs and bad profiles: a clear message naming the key path or the reason, nothing
built; secrets never in the message."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orchardist.profiles import envelope
from orchardist.profiles.builders import SpecError
from orchardist.profiles.spec import build_profile, load_spec
from orchardist.profiles.validate import COMMON, REQUIREMENTS, TOP_LEVEL, check_profile
from orchardist.schema.validate import KeySpec, mdm_schema

SECRET = "hunter2-do-not-log"


def _build(*payloads: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    spec = {"identifier": "com.example.bad", "payloads": list(payloads)}
    return build_profile(spec, base_dir=tmp_path, env={"SECRET": SECRET})


P0 = "PayloadContent[0]"
BAD_PAYLOADS: list[tuple[dict[str, Any], str]] = [
    ({"type": "teleporter"}, "payloads[0].type: 'teleporter' is neither a friendly type"),
    ({"type": "com.example.nothing"}, "'com.example.nothing' is neither a friendly type"),
    ({"type": "webclip", "Label": "x"}, f"{P0}.URL: is required"),
    ({"type": "webclip", "URL": 5, "Label": "x"}, f"{P0}.URL: must be a string, not integer"),
    (
        {"type": "wifi", "SSID_STR": "x", "EncryptionType": "ROT13"},
        f"{P0}.EncryptionType: 'ROT13' is not one of",
    ),
    ({"type": "passcode", "minLength": 99}, f"{P0}.minLength: must be at most"),
    (
        {"type": "wifi", "SSID_STR": "x", "EAPClientConfiguration": {"AcceptEAPTypes": ["PEAP"]}},
        f"{P0}.EAPClientConfiguration.AcceptEAPTypes[0]: must be an integer, not string",
    ),
    (
        {"type": "webclip", "URL": "u", "Label": "l", "Colour": "red"},
        f"{P0}.Colour: is not a key Apple defines here",
    ),
    (
        {"type": "wifi", "SSID_STR": "x", "Password": {"env": "MISSING"}},
        "payloads[0].Password: the environment variable MISSING is not set",
    ),
    (
        {"type": "root-certificate", "PayloadContent": {"file": "nope.pem"}},
        "payloads[0].PayloadContent: cannot read",
    ),
    (
        {"type": "root-certificate", "PayloadContent": "!!!"},
        "payloads[0].PayloadContent: data must be base64",
    ),
    (
        {"type": "root-certificate", "PayloadContent": "aGVsbG8="},
        "payloads[0].PayloadContent: not a DER or PEM certificate",
    ),
]


@pytest.mark.parametrize(("payload", "message"), BAD_PAYLOADS)
def test_bad_payloads_name_the_key(payload: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        _build(payload, tmp_path=tmp_path)
    assert message in str(caught.value)


def test_a_secret_in_the_wrong_place_is_not_repeated(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text(SECRET + "\n")
    for source in ({"env": "SECRET"}, {"file": "pw.txt"}):
        with pytest.raises(SpecError) as caught:
            _build({"type": "wifi", "SSID_STR": "x", "EncryptionType": source}, tmp_path=tmp_path)
        assert "PayloadContent[0].EncryptionType" in str(caught.value)
        assert SECRET not in str(caught.value)


def test_spec_files(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("identifier = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    (tmp_path / "empty.toml").write_text('identifier = "com.example.x"\n')
    with pytest.raises(SpecError, match="payloads: at least one"):
        load_spec(tmp_path / "empty.toml")
    (tmp_path / "extra.toml").write_text(
        'identifier = "x"\ncolour = "red"\n[[payloads]]\ntype = "passcode"\n'
    )
    with pytest.raises(SpecError, match="colour: not a profile setting"):
        load_spec(tmp_path / "extra.toml")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.toml")


def test_duplicate_identifiers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"PayloadContent\[1\].PayloadIdentifier: is used twice"):
        _build({"type": "passcode", "identifier": "same"},
               {"type": "restrictions", "identifier": "same"}, tmp_path=tmp_path)  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<?xml version='1.0'?><plist><dict><key>x</key>", "malformed plist"),
        (b"\x30\x82\x00\x10garbage-der-that-is-not-cms", "signature does not verify"),
        (b"<?xml version='1.0'?><plist version='1.0'><array/></plist>", "not a dictionary"),
    ],
)
def test_unreadable_profiles(data: bytes, message: str) -> None:
    with pytest.raises(envelope.ProfileReadError, match=message):
        envelope.read(data)


def test_the_whole_schema_validates_a_profile_of_every_payload_type() -> None:
    """A minimal payload of each of Apple's payload types (required keys only, each given
    a value its spec allows) passes; each with one key's type broken fails on that key."""
    types = sorted(set(mdm_schema().profiles) - {TOP_LEVEL, COMMON})
    assert len(types) >= 120
    payloads = [
        {"PayloadType": t, "PayloadVersion": 1, "PayloadIdentifier": f"p.{n}",
         "PayloadUUID": f"UUID-{n}", **_minimal(t)}
        for n, t in enumerate(types)
    ]  # fmt: skip
    profile = {
        "PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "all",
        "PayloadUUID": "UUID-TOP", "PayloadContent": payloads,
    }  # fmt: skip
    report = check_profile(profile)
    assert report.errors == []
    payloads[0]["PayloadVersion"] = "one"
    assert [str(e) for e in check_profile(profile).errors] == [
        "PayloadContent[0].PayloadVersion: must be an integer, not string"
    ]


def _minimal(payload_type: str) -> dict[str, Any]:
    """The required keys, and the first of each requirement Apple states in prose."""
    keys = mdm_schema().profiles[payload_type]
    values = _required(keys)
    by_name = {spec.key: spec for spec in keys}
    for requirement in REQUIREMENTS:
        if requirement.payload_type == payload_type and requirement.problem(values, "p"):
            values[requirement.keys[0]] = _value(by_name[requirement.keys[0]])
    return values


def _required(keys: tuple[KeySpec, ...]) -> dict[str, Any]:
    return {spec.key: _value(spec) for spec in keys if spec.required and spec.key != "ANY"}


def _value(spec: KeySpec) -> Any:
    if spec.values:
        return spec.values[0]
    if spec.type == "dictionary":
        return _required(spec.subkeys)
    simple: dict[str, Any] = {
        "string": "x", "integer": int(spec.minimum or 1), "real": float(spec.minimum or 1),
        "boolean": True, "data": b"x", "date": datetime(2026, 1, 1), "array": [],
    }  # fmt: skip
    return simple.get(spec.type, "x")
