"""The compiled schema in the package is what Apple's YAML (tests/vectors) says."""

from __future__ import annotations

from orchardist.schema.generate import OUTPUT, compile_schema, render
from orchardist.schema.validate import mdm_schema
from tests.captures import APPLE_SCHEMA as APPLE


def test_compiled_schema_is_up_to_date() -> None:
    assert APPLE.is_dir(), f"Apple's schema is expected at {APPLE}"
    fresh = render(compile_schema(APPLE))
    assert OUTPUT.read_text(encoding="utf-8") == fresh, (
        "run: .venv/bin/python -m orchardist.schema.generate tests/vectors/apple-device-management"
    )


def test_every_command_and_checkin_message_is_there() -> None:
    schema = mdm_schema()
    yaml_commands = list((APPLE / "mdm" / "commands").glob("*.yaml"))
    assert len(schema.commands) == len(yaml_commands) == 66
    assert {"DeviceLock", "EraseDevice", "ClearPasscode", "DeviceInformation", "Settings"} <= set(
        schema.commands
    )
    assert set(schema.checkin) == {
        "Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate", "SetBootstrapToken",
        "GetBootstrapToken", "DeclarativeManagement", "GetToken",
    }  # fmt: skip
    assert schema.source.startswith("Commit: b6202ca2")
    assert {"com.apple.mdm", "com.apple.security.scep", "com.apple.wifi.managed"} <= set(
        schema.profiles
    )


def test_string_subkeys_become_allowed_values() -> None:
    queries = next(k for k in mdm_schema().commands["DeviceInformation"] if k.key == "Queries")
    assert queries.type == "array"
    (item,) = queries.subkeys
    assert item.values is not None
    assert {"UDID", "SerialNumber", "OSVersion", "ModelName"} <= set(item.values)


def test_compiled_profile_forms_are_up_to_date() -> None:
    from orchardist.schema import forms_generate

    fresh = forms_generate.render(forms_generate.compile_forms(APPLE))
    assert forms_generate.OUTPUT.read_text(encoding="utf-8") == fresh, (
        "run: .venv/bin/python -m orchardist.schema.forms_generate "
        "tests/vectors/apple-device-management"
    )
