"""Device reports to the ServerURL, read from real devices' captures."""

from __future__ import annotations

import plistlib

import pytest

from orchardist.mdm.reports import OFF_LOOP_BYTES, ReportError, Status, parse_report, read_report
from tests.captures import capture

COMMANDMENT = "cmdmnt_commandment/testdata"
ZENTRAL = "zentralopensource_zentral/tests/mdm/testdata"

RESULTS = {
    f"{COMMANDMENT}/DeviceInformation/iOS-11.3.1.xml": "QueryResponses",
    f"{COMMANDMENT}/DeviceInformation/macOS-10.13.1.xml": "QueryResponses",
    "micromdm_nanomdm/mdm/testdata/DeviceInformation.1.plist": "QueryResponses",
    f"{ZENTRAL}/device_information.plist": "QueryResponses",
    f"{COMMANDMENT}/SecurityInfo/iOS-11.3.1.xml": "SecurityInfo",
    f"{COMMANDMENT}/SecurityInfo/macOS-10.13.1.xml": "SecurityInfo",
    f"{ZENTRAL}/security_info.plist": "SecurityInfo",
    f"{ZENTRAL}/security_info_ios.plist": "SecurityInfo",
    "micromdm_nanocmd/workflow/inventory/testdata/secinfo.plist": "SecurityInfo",
    f"{COMMANDMENT}/InstalledApplicationList/iOS-12.1.xml": "InstalledApplicationList",
    f"{COMMANDMENT}/InstalledApplicationList/10.11.x.xml": "InstalledApplicationList",
    f"{ZENTRAL}/installed_application_list.plist": "InstalledApplicationList",
    f"{COMMANDMENT}/ProfileList/10.11.x.xml": "ProfileList",
    f"{COMMANDMENT}/ProfileList/iOS-11.3.1.xml": "ProfileList",
    f"{ZENTRAL}/profile_list.plist": "ProfileList",
    f"{ZENTRAL}/certificate_list.plist": "CertificateList",
    "micromdm_nanocmd/workflow/certprof/testdata/certlist.plist": "CertificateList",
    f"{ZENTRAL}/managed_application_list.plist": "ManagedApplicationList",
    f"{COMMANDMENT}/AvailableOSUpdates/macOS-10.13.1.xml": "AvailableOSUpdates",
}


@pytest.mark.parametrize(("name", "key"), RESULTS.items())
def test_acknowledged_results(name: str, key: str) -> None:
    report = parse_report(capture(name))
    assert report.status == Status.ACKNOWLEDGED
    assert report.command_uuid
    assert report.device_id
    assert key in report.result
    assert "Status" not in report.result
    assert "CommandUUID" not in report.result


def test_not_now_and_format_error() -> None:
    not_now = parse_report(capture(f"{COMMANDMENT}/NotNow/iOS-11.3.1.xml"))
    assert (not_now.status, not_now.command_uuid) == (
        Status.NOT_NOW,
        "bb5d7813-e7c3-4279-b954-4b678925de5f",
    )
    bad = parse_report(capture(f"{COMMANDMENT}/Errors/iOS-11.3.1-CommandFormatError.xml"))
    assert bad.status == Status.COMMAND_FORMAT_ERROR


def test_error_with_its_chain() -> None:
    report = parse_report(capture(f"{COMMANDMENT}/Errors/10.13.6-invalid-command.xml"))
    assert report.status == Status.ERROR
    assert report.error_chain
    assert "ErrorCode" in report.error_chain[0]


def test_idle_needs_no_command_uuid() -> None:
    report = parse_report(plistlib.dumps({"Status": "Idle", "UDID": "u"}))
    assert (report.status, report.command_uuid, report.is_result) == (Status.IDLE, None, False)


def test_certificate_list_capture_redacted_upstream_is_refused_cleanly() -> None:
    with pytest.raises(ReportError, match="malformed plist"):
        parse_report(capture(f"{COMMANDMENT}/CertificateList/iOS-11.3.1.xml"))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"UDID": "u"}, "Status is missing"),
        ({"Status": "Maybe", "UDID": "u"}, "unknown Status"),
        ({"Status": "Acknowledged", "UDID": "u"}, "without CommandUUID"),
        ({"Status": "Idle"}, "neither UDID nor EnrollmentID"),
        ({"Status": "Idle", "UDID": ""}, "UDID must be"),
        ({"Status": "Error", "UDID": "u", "CommandUUID": "c", "ErrorChain": "x"}, "ErrorChain"),
    ],
)
def test_bad_reports_give_a_reason(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ReportError, match=reason):
        parse_report(plistlib.dumps(fields))


@pytest.mark.anyio
async def test_a_large_report_reads_the_same_off_the_event_loop() -> None:
    apps = [{"Identifier": f"com.example.app{n}", "Name": f"App {n}"} for n in range(5000)]
    body = plistlib.dumps(
        {
            "Status": "Acknowledged",
            "UDID": "u",
            "CommandUUID": "c",
            "InstalledApplicationList": apps,
        }
    )
    assert len(body) > OFF_LOOP_BYTES
    assert await read_report(body) == parse_report(body)
    with pytest.raises(ReportError, match="without CommandUUID"):
        await read_report(body.replace(b"<key>CommandUUID</key>", b"<key>Other</key>"))
