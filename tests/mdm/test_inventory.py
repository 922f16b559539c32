"""Real query results become inventory records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchardist.mdm.inventory import inventory_from
from orchardist.mdm.reports import parse_report
from tests.captures import capture

COMMANDMENT = "cmdmnt_commandment/testdata"
ZENTRAL = "zentralopensource_zentral/tests/mdm/testdata"


def _result(name: str) -> dict[str, object]:
    return dict(parse_report(capture(name)).result)


def test_device_information() -> None:
    update = inventory_from(
        "DeviceInformation", _result(f"{COMMANDMENT}/DeviceInformation/iOS-11.3.1.xml")
    )
    assert update is not None
    assert update.facts is not None
    assert update.facts["OSVersion"] == "11.3.1"


@pytest.mark.parametrize(
    "name", [f"{COMMANDMENT}/SecurityInfo/iOS-11.3.1.xml", f"{ZENTRAL}/security_info_ios.plist"]
)
def test_security_info(name: str) -> None:
    update = inventory_from("SecurityInfo", _result(name))
    assert update is not None
    assert update.security is not None
    assert "HardwareEncryptionCaps" in update.security or "PasscodePresent" in update.security


@pytest.mark.parametrize(
    "name",
    [
        f"{COMMANDMENT}/InstalledApplicationList/iOS-12.1.xml",
        f"{ZENTRAL}/installed_application_list.plist",
    ],
)
def test_installed_applications(name: str) -> None:
    update = inventory_from("InstalledApplicationList", _result(name))
    assert update is not None
    assert update.apps
    assert all(app.identifier for app in update.apps)


@pytest.mark.parametrize(
    "name",
    [
        f"{ZENTRAL}/certificate_list.plist",
        "micromdm_nanocmd/workflow/certprof/testdata/certlist.plist",
    ],
)
def test_certificates_with_expiry(name: str) -> None:
    update = inventory_from("CertificateList", _result(name))
    assert update is not None
    assert update.certificates
    dated = [c for c in update.certificates if c.not_after is not None]
    assert dated
    assert all(isinstance(c.not_after, datetime) and c.not_after.tzinfo for c in dated)
    assert all(c.sha256 and len(c.sha256) == 64 for c in update.certificates)


@pytest.mark.parametrize(
    "name", [f"{COMMANDMENT}/ProfileList/iOS-11.3.1.xml", f"{ZENTRAL}/profile_list.plist"]
)
def test_profiles(name: str) -> None:
    update = inventory_from("ProfileList", _result(name))
    assert update is not None
    assert update.profiles
    assert all(profile.identifier for profile in update.profiles)


def test_provisioning_profiles_and_restrictions() -> None:
    result = {
        "ProvisioningProfileList": [
            {"UUID": "U-1", "Name": "In-House", "ExpiryDate": datetime(2027, 1, 2, 3, 4, 5)}
        ]
    }
    update = inventory_from("ProvisioningProfileList", result)
    assert update is not None
    assert update.provisioning_profiles is not None
    (profile,) = update.provisioning_profiles
    assert profile.expires_at == datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    restrictions = inventory_from("Restrictions", {"GlobalRestrictions": {"restrictedBool": {}}})
    assert restrictions is not None
    assert restrictions.restrictions == {"GlobalRestrictions": {"restrictedBool": {}}}


def test_other_commands_carry_no_inventory() -> None:
    assert inventory_from("DeviceLock", {"MessageResult": "Success"}) is None
