"""What Apple's schema says only in prose (a Wi-Fi payload needs its SSID), secrets written
into a spec in plain text, and `check_spec` (what `profile validate spec.toml` reports)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orchardist.profiles.builders import SpecError
from orchardist.profiles.secrets import plaintext_secrets, secret_keys
from orchardist.profiles.spec import build_profile, check_spec
from orchardist.profiles.validate import REQUIREMENTS, check_profile
from orchardist.schema.validate import mdm_schema

WIFI_WITHOUT_SSID = {"type": "wifi", "EncryptionType": "WPA2", "Password": {"env": "PW"}}


def _build(payload: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    spec = {"identifier": "com.example.x", "payloads": [payload]}
    return build_profile(spec, base_dir=tmp_path, env={"PW": "wifi-secret"})


def test_a_wifi_payload_without_its_ssid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        _build(WIFI_WITHOUT_SSID, tmp_path)
    assert str(caught.value).startswith("PayloadContent[0].SSID_STR: is required")
    assert "Hotspot 2.0" in str(caught.value)
    assert "wifi-secret" not in str(caught.value)
    # A Hotspot 2.0 network is found by its domain instead: Apple makes SSID_STR optional.
    hotspot = _build({**WIFI_WITHOUT_SSID, "DomainName": "example.com", "IsHotspot": True},
                     tmp_path)  # fmt: skip
    assert "SSID_STR" not in hotspot["PayloadContent"][0]


def test_imported_profiles_get_the_same_rule_as_an_error(tmp_path: Path) -> None:
    profile = _build({**WIFI_WITHOUT_SSID, "SSID_STR": "Office"}, tmp_path)
    del profile["PayloadContent"][0]["SSID_STR"]
    report = check_profile(profile, unknown_keys_are_errors=False)
    assert [p.path for p in report.errors] == ["PayloadContent[0].SSID_STR"]


AIRPLAY = {"type": "com.apple.airplay.security", "SecurityType": "PASSWORD", "AccessType": "ANY"}
PROXY = {"type": "com.apple.proxy.http.global", "ProxyType": "Manual", "ProxyServer": "p"}


@pytest.mark.parametrize(
    ("payload", "path", "relaxed"),
    [
        (AIRPLAY, "PayloadContent[0].Password", {"SecurityType": "PASSCODE_ONCE"}),
        (PROXY, "PayloadContent[0].ProxyServerPort", {"ProxyType": "Auto"}),
    ],
)
def test_conditional_requirements(
    payload: dict[str, Any], path: str, relaxed: dict[str, str], tmp_path: Path
) -> None:
    with pytest.raises(SpecError, match=rf"{re.escape(path)}: is required \(Apple: required if"):
        _build(payload, tmp_path)
    assert _build({**payload, **relaxed}, tmp_path)["PayloadContent"]


def test_every_requirement_names_keys_apple_defines() -> None:
    """A typo in the table would make a rule that never fires: each key must exist."""
    for requirement in REQUIREMENTS:
        keys = {spec.key: spec for spec in mdm_schema().profiles[requirement.payload_type]}
        assert set(requirement.keys) <= set(keys), requirement
        if requirement.when is not None:
            name, value = requirement.when
            assert value in (keys[name].values or ()), requirement


def test_secret_keys_come_from_the_schema() -> None:
    keys = secret_keys()
    assert {"Password", "UserPassword", "SharedSecret", "XAuthPassword", "Challenge",
            "RemovalPassword", "IncomingPassword", "password"} <= keys  # fmt: skip
    # Booleans and settings about passwords are not secrets.
    assert not {"allowPasswordAutoFill", "XAuthPasswordEncryption", "PasscodeType"} & keys


def test_plaintext_secrets_are_named_not_repeated() -> None:
    spec = {
        "identifier": "com.example.x",
        "payloads": [
            {"type": "wifi", "SSID_STR": "Office", "Password": "hunter2"},
            {"type": "wifi", "SSID_STR": "Corp", "Password": {"env": "PW"},
             "EAPClientConfiguration": {"UserName": "alice", "UserPassword": "s3cret"}},
            {"type": "scep", "PayloadContent": {"URL": "https://x/scep", "Challenge": "c"}},
        ],
    }  # fmt: skip
    warnings = plaintext_secrets(spec)
    assert [w.split(":")[0] for w in warnings] == [
        "payloads[0].Password",
        "payloads[1].EAPClientConfiguration.UserPassword",
        "payloads[2].PayloadContent.Challenge",
    ]
    assert all('{ env = "NAME" }' in w and '{ file = "path" }' in w for w in warnings)
    assert not any("hunter2" in w or "s3cret" in w for w in warnings)


def test_check_spec_reports_without_the_secrets_at_hand(tmp_path: Path) -> None:
    spec = tmp_path / "office.toml"
    spec.write_text(
        'identifier = "com.example.office"\n'
        '[[payloads]]\ntype = "wifi"\nSSID_STR = "Office"\nEncryptionType = "WPA2"\n'
        'Password = { env = "NOT_SET_HERE" }\n'
        '[[payloads]]\ntype = "removal-password"\nRemovalPassword = "letmein"\n'
    )
    checked = check_spec(spec, env={})
    assert checked.errors == []
    assert checked.profile is not None
    assert [w.split(":")[0] for w in checked.warnings] == [
        "payloads[1].RemovalPassword",
        "the environment variable NOT_SET_HERE is not set here",
    ]
    spec.write_text('identifier = "x"\n[[payloads]]\ntype = "wifi"\n')
    assert check_spec(spec, env={}).errors[0].startswith("PayloadContent[0].SSID_STR")
    spec.write_text("identifier = \n")
    assert "not valid TOML" in check_spec(spec, env={}).errors[0]
