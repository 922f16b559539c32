"""Commands are checked against Apple's schema before they can be queued."""

from __future__ import annotations

import plistlib
import uuid

import pytest

from orchardist.mdm import builders
from orchardist.mdm.commands import CommandError, new_command, request_types
from orchardist.schema.validate import mdm_schema


def test_device_lock_plist() -> None:
    command = new_command("DeviceLock", {"Message": "Return to IT", "PhoneNumber": "+1 555 0100"})
    body = plistlib.loads(plistlib.dumps(command.as_plist()))
    assert body["Command"] == {
        "RequestType": "DeviceLock",
        "Message": "Return to IT",
        "PhoneNumber": "+1 555 0100",
    }
    assert uuid.UUID(body["CommandUUID"]).version == 4
    assert new_command("DeviceLock").command_uuid != command.command_uuid


@pytest.mark.parametrize(
    ("request_type", "params", "key", "message"),
    [
        ("DeviceLock", {"Message": 5}, "Message", "must be a string, not integer"),
        ("DeviceLock", {"Mesage": "typo"}, "Mesage", "not a key Apple defines"),
        ("InstallProfile", {}, "Payload", "is required"),
        ("InstallProfile", {"Payload": "not bytes"}, "Payload", "must be data"),
        ("DeviceInformation", {"Queries": ["UDID", "Nope"]}, "Queries[1]", "'Nope' is not one of"),
        ("DeviceInformation", {"Queries": "UDID"}, "Queries", "must be an array"),
        ("EraseDevice", {"ObliterationBehavior": "Shred"}, "ObliterationBehavior", "not one of"),
        ("EraseDevice", {"PreserveDataPlan": 1}, "PreserveDataPlan", "must be a boolean"),
        ("Settings", {"Settings": [{"Item": "DataRoaming"}]}, "Settings[0].Enabled", "required"),
        ("Settings", {"Settings": [{"Item": "NoSuchSetting"}]}, "Settings[0]", "matches none"),
        ("NoSuchCommand", {}, "request_type", "unknown RequestType"),
        ("deviceinformation", {}, "request_type", "(did you mean DeviceInformation,"),
        ("EraseDevic", {}, "request_type", "(did you mean EraseDevice or RestartDevice?)"),
        ("DeviceLock", {"RequestType": "EraseDevice"}, "RequestType", "is set from request_type"),
    ],
)
def test_bad_parameters_name_the_key(
    request_type: str, params: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        new_command(request_type, params)
    assert caught.value.key == key
    assert message in str(caught.value)


def test_good_parameters_of_many_shapes() -> None:
    new_command("DeviceInformation", {"Queries": ["UDID", "SerialNumber", "OSVersion"]})
    new_command("InstallProfile", {"Payload": b"<plist/>"})
    new_command("EraseDevice", {"PIN": "123456", "PreserveDataPlan": True})
    new_command(
        "Settings",
        {
            "Settings": [
                {"Item": "DataRoaming", "Enabled": False},
                {"Item": "Bluetooth", "Enabled": True},
            ]
        },
    )
    new_command("ScheduleOSUpdate", {"Updates": [{"InstallAction": "Default", "ProductKey": "x"}]})


def test_bare_commands_fail_exactly_when_apple_requires_a_key() -> None:
    bare = 0
    for request_type in request_types():
        required = [key.key for key in mdm_schema().commands[request_type] if key.required]
        if required:
            with pytest.raises(CommandError, match="is required"):
                new_command(request_type)
        else:
            assert new_command(request_type).request_type == request_type
            bare += 1
    assert bare > 30  # the queries (SecurityInfo, ProfileList…) need nothing


def test_friendly_builders_pass_the_schema() -> None:
    built = [
        builders.device_lock("Lost", "+1 555 0100"),
        builders.device_lock(),
        builders.erase_device(pin="123456", preserve_data_plan=True),
        builders.clear_passcode(b"token"),
        builders.install_profile(b"<plist/>"),
        builders.remove_profile("com.example.wifi"),
        builders.install_provisioning_profile(b"mobileprovision"),
        builders.remove_provisioning_profile("5D6AB8E5-0000-0000-0000-000000000000"),
        builders.settings({"Item": "DataRoaming", "Enabled": False}),
        *builders.QUERIES.values(),
    ]
    for request_type, params in built:
        assert new_command(request_type, params).request_type == request_type
