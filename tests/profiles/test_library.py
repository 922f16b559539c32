"""The profile library on every backend: versions, assignment to devices / groups / all,
InstallProfile encrypted per device, results moving each device's state, removal, drift."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from orchardist.profiles import envelope
from orchardist.profiles.library import ProfileLibrary, ProfileRejectedError
from orchardist.profiles.spec import build_profile
from orchardist.storage.profiles import ProfileState, TargetKind
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio


def _profile(tmp_path: Path, ssid: str = "Office") -> dict[str, object]:
    spec = {
        "identifier": "com.example.wifi",
        "name": "Wi-Fi",
        "payloads": [{"type": "wifi", "SSID_STR": ssid, "EncryptionType": "WPA2",
                      "Password": {"env": "PW"}}],
    }  # fmt: skip
    return build_profile(spec, base_dir=tmp_path, env={"PW": "wifi-secret"})


async def _next_command(server: Server, device: Device) -> dict[str, object]:
    reply = await server.report(device, "Idle")
    assert reply.status_code == 200
    sent: dict[str, object] = plistlib.loads(reply.content)
    return sent


def _states(rows: list[object]) -> dict[str, tuple[str, int | None]]:
    return {r.device_id: (r.state.value, r.installed_version) for r in rows}  # type: ignore[attr-defined]


async def test_assign_install_update_remove(server: Server, tmp_path: Path) -> None:
    library = server.services.profiles
    assert isinstance(library, ProfileLibrary)
    devices = [await server.device(f"UDID-{n}", 160 + n) for n in range(3)]
    for device in devices:
        await server.enroll(device)
    first = (await library.add(_profile(tmp_path))).version
    assert (first.version, first.payload_types) == (1, ("com.apple.wifi.managed",))
    await server.services.storage.set_group("sales", ["UDID-1"])
    done = await library.assign("com.example.wifi", devices=["UDID-0"], groups=["sales"])
    assert (done.installs, done.removals) == (2, 0)

    # The device gets a signed profile whose payloads only its key opens.
    sent = await _next_command(server, devices[0])
    command = sent["Command"]
    assert isinstance(command, dict)
    assert command["RequestType"] == "InstallProfile"
    read = envelope.read(command["Payload"])
    assert read.signer is not None
    assert b"wifi-secret" not in command["Payload"]
    payloads = envelope.decrypt_payloads(read.profile, devices[0].cert, devices[0].key)
    assert payloads[0]["Password"] == "wifi-secret"
    await server.report(devices[0], "Acknowledged", CommandUUID=sent["CommandUUID"])
    rows = await server.services.storage.device_profiles(identifier="com.example.wifi")
    assert _states(rows) == {"UDID-0": ("installed", 1), "UDID-1": ("pending", None)}

    # The other device refuses it: failed, with the device's reasons.
    sent = await _next_command(server, devices[1])
    await server.report(
        devices[1], "Error", CommandUUID=sent["CommandUUID"],
        ErrorChain=[{"ErrorDomain": "MCProfileErrorDomain", "ErrorCode": 1009,
                     "USEnglishDescription": "The profile is not signed."}],
    )  # fmt: skip
    (failed,) = await server.services.storage.device_profiles(device_id="UDID-1")
    assert failed.state == ProfileState.FAILED
    assert failed.error is not None
    assert "MCProfileErrorDomain 1009: The profile is not signed." in failed.error

    # A new version goes to every device that should have it, the failed one too.
    await library.add(_profile(tmp_path, ssid="Office-5G"))
    done = await library.reconcile()
    assert done.installs == 2
    sent = await _next_command(server, devices[0])
    await server.report(devices[0], "Acknowledged", CommandUUID=sent["CommandUUID"])
    (updated,) = await server.services.storage.device_profiles(device_id="UDID-0")
    assert (updated.state, updated.installed_version) == (ProfileState.INSTALLED, 2)

    # Assigned to all: the third device too. Unassigned from all and UDID-0: removed there.
    assert (await library.assign("com.example.wifi", everyone=True)).installs == 1
    done = await library.assign(
        "com.example.wifi", devices=["UDID-0"], everyone=True, assigned=False
    )
    assert done.removals == 2  # UDID-0 and UDID-2; UDID-1 keeps it through its group
    sent = await _next_command(server, devices[0])
    command = sent["Command"]
    assert command == {"RequestType": "RemoveProfile", "Identifier": "com.example.wifi"}
    await server.report(devices[0], "Acknowledged", CommandUUID=sent["CommandUUID"])
    (removed,) = await server.services.storage.device_profiles(device_id="UDID-0")
    assert (removed.state, removed.installed_version) == (ProfileState.REMOVED, None)


async def test_the_same_content_again_is_no_new_version(server: Server, tmp_path: Path) -> None:
    library = server.services.profiles
    assert isinstance(library, ProfileLibrary)
    device = await server.device("UDID-U", 175)
    await server.enroll(device)
    assert not (await library.add(_profile(tmp_path))).unchanged
    await library.assign("com.example.wifi", devices=["UDID-U"])
    sent = await _next_command(server, device)
    await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"])

    again = await library.add(_profile(tmp_path))
    assert (again.unchanged, again.version.version) == (True, 1)
    # Another tool's export of the same profile has fresh PayloadUUIDs: still the same.
    exported = _profile(tmp_path)
    exported["PayloadUUID"] = "5A1F3E52-0000-4000-8000-000000000001"
    exported["PayloadContent"][0]["PayloadUUID"] = "5A1F3E52-0000-4000-8000-000000000002"  # type: ignore[index]
    assert (await library.upload(envelope.serialize(exported))).unchanged
    assert (await library.reconcile()).installs == 0
    assert len(await server.services.storage.profile_versions("com.example.wifi")) == 1
    assert (await server.report(device, "Idle")).content == b""  # nothing reinstalled

    changed = await library.add(_profile(tmp_path, ssid="Office-5G"))
    assert (changed.unchanged, changed.version.version) == (False, 2)
    # Deleted, then uploaded again: a new version, not "unchanged" against the deleted one.
    await library.delete("com.example.wifi")
    assert not (await library.add(_profile(tmp_path, ssid="Office-5G"))).unchanged


async def test_drift_is_seen_and_repaired(server: Server, tmp_path: Path) -> None:
    library = server.services.profiles
    assert isinstance(library, ProfileLibrary)
    device = await server.device("UDID-D", 170)
    await server.enroll(device)
    await library.add(_profile(tmp_path))
    await library.assign("com.example.wifi", devices=["UDID-D"])
    sent = await _next_command(server, device)
    await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"])
    # The periodic pass asks for the ProfileList; the user had removed the profile.
    assert (await library.repair()).installs == 0
    sent = await _next_command(server, device)
    assert sent["Command"] == {"RequestType": "ProfileList"}
    await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"], ProfileList=[])
    (row,) = await server.services.storage.device_profiles(device_id="UDID-D")
    assert row.state == ProfileState.MISSING
    assert (await library.repair()).installs == 1  # offered again
    sent = await _next_command(server, device)
    assert sent["Command"]["RequestType"] == "InstallProfile"  # type: ignore[index]


async def test_bad_profiles_are_not_stored(server: Server) -> None:
    library = server.services.profiles
    assert isinstance(library, ProfileLibrary)
    with pytest.raises(ProfileRejectedError, match="malformed plist"):
        await library.upload(b"<?xml version='1.0'?><plist><dict><key>x")
    with pytest.raises(ProfileRejectedError, match=r"PayloadContent\[0\].URL: is required"):
        await library.upload(
            plistlib.dumps({
                "PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "x",
                "PayloadUUID": "U", "PayloadContent": [{
                    "PayloadType": "com.apple.webClip.managed", "PayloadVersion": 1,
                    "PayloadIdentifier": "x.clip", "PayloadUUID": "V", "Label": "L"}],
            })
        )  # fmt: skip
    assert await server.services.storage.list_profiles() == []
    with pytest.raises(LookupError, match="no profile"):
        await library.assign("com.example.none", everyone=True)


async def test_an_enrolling_device_gets_its_groups_and_alls_profiles(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = server.services.profiles
    assert isinstance(library, ProfileLibrary)
    storage = server.services.storage
    others = await server.device("UDID-O", 176)
    await server.enroll(others)
    for identifier, ssid in (("com.example.sales", "S"), ("com.example.all", "A"),
                             ("com.example.ops", "O")):  # fmt: skip
        await library.add({**_profile(tmp_path, ssid), "PayloadIdentifier": identifier})
    await storage.set_group("sales", ["UDID-N"])
    await storage.set_group("ops", ["UDID-O"])
    await library.assign("com.example.sales", groups=["sales"])
    await library.assign("com.example.all", everyone=True)
    await library.assign("com.example.ops", groups=["ops"])

    async def fleet_groups() -> None:
        raise AssertionError("a TokenUpdate read every group's members")

    # One device's enrollment reads its own groups, never the fleet's.
    monkeypatch.setattr(storage, "groups", fleet_groups)
    device = await server.device("UDID-N", 177)
    await server.enroll(device)
    rows = await storage.device_profiles(device_id="UDID-N")
    assert {(r.identifier, r.state) for r in rows} == {
        ("com.example.sales", ProfileState.PENDING),
        ("com.example.all", ProfileState.PENDING),
    }


async def test_a_full_pass_finds_each_way_a_device_is_reached(
    server: Server, tmp_path: Path
) -> None:
    """Assignments stored with no pass after them (a server killed before its pass): the
    full pass at start finds the device assigned itself, the group's member and the device
    holding a row for a profile no longer assigned to it; the fourth device it passes over."""
    library = server.services.profiles
    assert isinstance(library, ProfileLibrary)
    storage = server.services.storage
    for n in range(4):
        await server.enroll(await server.device(f"UDID-R{n}", 180 + n))
    for identifier, ssid in (("com.example.mine", "M"), ("com.example.team", "T"),
                             ("com.example.old", "X")):  # fmt: skip
        await library.add({**_profile(tmp_path, ssid), "PayloadIdentifier": identifier})
    await library.assign("com.example.old", devices=["UDID-R2"])  # a row, then unassigned
    await storage.set_group("team", ["UDID-R1"])
    await storage.set_assignments("com.example.mine", TargetKind.DEVICE, ["UDID-R0"],
                                  assigned=True)  # fmt: skip
    await storage.set_assignments("com.example.team", TargetKind.GROUP, ["team"], assigned=True)
    await storage.set_assignments("com.example.old", TargetKind.DEVICE, ["UDID-R2"],
                                  assigned=False)  # fmt: skip

    done = await library.reconcile()
    assert (done.installs, done.removals) == (2, 1)
    wanted = {(r.device_id, r.identifier, r.state) for r in await storage.device_profiles()}
    assert wanted == {
        ("UDID-R0", "com.example.mine", ProfileState.PENDING),
        ("UDID-R1", "com.example.team", ProfileState.PENDING),
        ("UDID-R2", "com.example.old", ProfileState.REMOVING),
    }
