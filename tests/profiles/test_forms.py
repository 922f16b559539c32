"""The profile builder's forms: generated from Apple's schema for every iOS payload, and
form text turned into a profile that passes the same checks as a spec."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator, Sequence

import pytest

from orchardist.profiles.builders import SpecError
from orchardist.profiles.forms import (
    FormField,
    FormPayload,
    build_from_forms,
    payload_forms,
    spec_from_forms,
)
from orchardist.schema.validate import KeySpec, mdm_schema

WIFI, PASSCODE = "com.apple.wifi.managed", "com.apple.mobiledevice.passwordpolicy"


def _pairs(fields: Sequence[FormField], keys: Sequence[KeySpec]) -> Iterator[tuple[str, str]]:
    known = {k.key: k for k in keys}
    for field in fields:
        spec = known.get(field.key)
        yield field.key, ("" if spec is not None and spec.type == field.type else "mismatch")
        if spec is not None:
            yield from _pairs(field.subfields, spec.subkeys)


def test_every_ios_payload_has_a_form_the_validator_agrees_with() -> None:
    forms = payload_forms()
    assert {WIFI, PASSCODE, "com.apple.vpn.managed", "com.apple.webClip.managed",
            "com.apple.security.scep", "com.apple.applicationaccess"} <= set(forms)  # fmt: skip
    assert "com.apple.finder" not in forms  # macOS only
    for payload_type, form in forms.items():
        schema = mdm_schema().profiles[payload_type]
        mismatched = [key for key, problem in _pairs(form.fields, schema) if problem]
        assert mismatched == [], payload_type
    wifi = forms[WIFI]
    ssid = next(f for f in wifi.fields if f.key == "SSID_STR")
    assert (wifi.title, ssid.title, ssid.type) == ("Wi-Fi", "SSID", "string")
    assert "SSID" in ssid.help
    auto_join = next(f for f in wifi.fields if f.key == "AutoJoin")
    assert auto_join.default is True
    encryption = next(f for f in wifi.fields if f.key == "EncryptionType")
    assert encryption.values is not None
    assert "WPA2" in encryption.values


def test_wifi_and_passcode_from_form_text() -> None:
    profile = build_from_forms(
        "com.example.office",
        "Office",
        "Example Corp",
        [
            FormPayload(
                WIFI,
                {
                    "SSID_STR": "Office",
                    "EncryptionType": "WPA2",
                    "Password": "correct horse",
                    "AutoJoin": "on",
                    "EAPClientConfiguration.AcceptEAPTypes": "25\n21",
                    "HIDDEN_NETWORK": "",
                },
            ),
            FormPayload(PASSCODE, {"minLength": "6", "forcePIN": "true"}),
        ],
    )
    wifi, passcode = profile["PayloadContent"]
    assert (wifi["PayloadType"], wifi["SSID_STR"], wifi["AutoJoin"]) == (WIFI, "Office", True)
    assert wifi["EAPClientConfiguration"]["AcceptEAPTypes"] == [25, 21]
    assert "HIDDEN_NETWORK" not in wifi  # empty means not set
    assert (passcode["minLength"], passcode["forcePIN"]) == (6, True)
    assert (profile["PayloadIdentifier"], profile["PayloadDisplayName"]) == (
        "com.example.office",
        "Office",
    )
    assert plistlib.loads(plistlib.dumps(profile)) == profile  # the XML preview round-trips


def test_an_array_of_dictionaries_by_index() -> None:
    spec, problems = spec_from_forms(
        "com.example.airplay", "", "",
        [FormPayload("com.apple.airplay", {"Passwords[1].DeviceName": "Boardroom",
                                           "Passwords[1].Password": "pw",
                                           "Passwords[0].DeviceName": "Lobby"})],
    )  # fmt: skip
    assert problems == []
    assert spec["payloads"][0]["Passwords"] == [
        {"DeviceName": "Lobby"},
        {"DeviceName": "Boardroom", "Password": "pw"},
    ]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"minLength": "six"}, "payloads[0].minLength: 'six' is not a whole number"),
        ({"forcePIN": "maybe"}, "payloads[0].forcePIN: must be true or false"),
        ({"colour": "blue"}, "payloads[0].colour: colour is not a key of this payload"),
    ],
)
def test_text_that_does_not_read_names_its_key_path(values: dict[str, str], problem: str) -> None:
    with pytest.raises(SpecError) as refused:
        build_from_forms("com.example.p", "", "", [FormPayload(PASSCODE, values)])
    assert refused.value.problems == [problem]


def test_schema_problems_name_the_key_path_too() -> None:
    with pytest.raises(SpecError) as refused:
        build_from_forms(
            "com.example.wifi", "", "",
            [FormPayload(WIFI, {"SSID_STR": "Office", "EncryptionType": "ROT13"})],
        )  # fmt: skip
    assert any("EncryptionType" in p for p in refused.value.problems)
    with pytest.raises(SpecError, match="SSID"):  # Apple's rule: SSID unless DomainName
        build_from_forms("com.example.wifi", "", "", [FormPayload(WIFI, {"AutoJoin": "true"})])
    with pytest.raises(SpecError, match="not an iOS payload"):
        build_from_forms("com.example.x", "", "", [FormPayload("com.apple.finder", {})])
