"""No device can take over another's enrollment (mdm/binding.py): every variant of the
attack is a 403 with a log line naming both devices, and the victim keeps working."""

from __future__ import annotations

import plistlib
import uuid

import httpx
import pytest
from structlog.testing import capture_logs

from orchardist.scep.issuance import Binding
from orchardist.tokens import create_api_token
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio
TOPIC = "com.apple.mgmt.t"


def posing(attacker: Device, victim: Device) -> Device:
    """The attacker's key and certificate, naming the victim's UDID."""
    return Device(victim.udid, attacker.key, attacker.cert)


async def _api(server: Server, method: str, path: str, **kwargs: object) -> httpx.Response:
    token = await create_api_token(server.services.storage, f"t-{uuid.uuid4().hex}", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    return await server.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


async def _victim_still_works(server: Server, victim: Device) -> None:
    command_uuid = await server.queue("DeviceLock", {}, victim)
    idle = await server.report(victim, "Idle")
    assert idle.status_code == 200
    assert plistlib.loads(idle.content)["CommandUUID"] == command_uuid
    done = await server.report(victim, "Acknowledged", CommandUUID=command_uuid)
    assert done.status_code == 200
    shown = (await _api(server, "GET", f"/api/v1/devices/{victim.udid}")).json()
    assert (shown["enrolled"], shown["state"]) == (True, "enrolled")
    enrollment = await server.services.storage.get_enrollment(victim.udid)  # type: ignore[attr-defined]
    assert enrollment.identity_sha256 == _sha256(victim)


def _sha256(device: Device) -> str:
    from orchardist.pki.ca import fingerprint_sha256

    return fingerprint_sha256(device.cert)


async def test_the_reported_attack_is_refused_and_the_victim_keeps_working(
    server: Server,
) -> None:
    victim = await server.device("UDID-VICTIM", 120)
    attacker = await server.device("UDID-ATTACKER", 121)
    await server.enroll(victim)
    await server.enroll(attacker)
    waiting = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, victim)
    fake = posing(attacker, victim)

    with capture_logs() as logs:
        taken = await server.checkin(fake, "Authenticate", Topic=TOPIC)
    assert taken.status_code == 403
    assert "belongs to device UDID-ATTACKER" in taken.text
    (line,) = [entry for entry in logs if entry["event"] == "mdm_refused"]
    assert (line["device_id"], line["certificate_device"]) == ("UDID-VICTIM", "UDID-ATTACKER")

    # Nor any other message in the victim's name: its queue stays its own.
    assert (await server.checkin(fake, "TokenUpdate", Topic=TOPIC, Token=b"\x02" * 32,
                                 PushMagic="X")).status_code == 403  # fmt: skip
    assert (await server.checkin(fake, "CheckOut")).status_code == 403
    stolen = await server.report(fake, "Idle")
    assert (stolen.status_code, "belongs to device UDID-ATTACKER" in stolen.text) == (403, True)
    assert (await server.report(fake, "Acknowledged", CommandUUID=waiting)).status_code == 403
    idle = await server.report(victim, "Idle")
    assert plistlib.loads(idle.content)["CommandUUID"] == waiting  # not cancelled, not stolen
    await server.report(victim, "Acknowledged", CommandUUID=waiting, QueryResponses={})
    await _victim_still_works(server, victim)


async def test_a_fresh_certificate_cannot_take_an_enrolled_device(server: Server) -> None:
    victim = await server.device("UDID-V2", 122)
    await server.enroll(victim)
    unused = await server.device("UDID-NEVER-USED", 123)  # from the static challenge, say
    with capture_logs() as logs:
        taken = await server.checkin(posing(unused, victim), "Authenticate", Topic=TOPIC)
    assert taken.status_code == 403
    assert "enrolled with another certificate" in taken.text
    assert "orchardist device retire UDID-V2 --yes --forget" in taken.text
    (line,) = [entry for entry in logs if entry["event"] == "mdm_refused"]
    assert line["device_id"] == "UDID-V2"
    await _victim_still_works(server, victim)


async def test_a_device_between_authenticate_and_token_update_is_bound(server: Server) -> None:
    victim = await server.device("UDID-V3", 124)
    assert (await server.checkin(victim, "Authenticate", Topic=TOPIC)).status_code == 200
    racer = await server.device("UDID-RACER", 125)
    raced = await server.checkin(posing(racer, victim), "Authenticate", Topic=TOPIC)
    assert raced.status_code == 403
    token_update = await server.checkin(
        victim, "TokenUpdate", Topic=TOPIC, Token=b"\x01" * 32, PushMagic="M"
    )
    assert token_update.status_code == 200
    await _victim_still_works(server, victim)


async def test_a_certificate_issued_for_one_device_serves_only_that_one(server: Server) -> None:
    bound = await server.device("UDID-OTA", 126, binding=Binding(device_id="UDID-OTA"))
    elsewhere = Device("UDID-BRAND-NEW", bound.key, bound.cert)
    with capture_logs() as logs:
        refused = await server.checkin(elsewhere, "Authenticate", Topic=TOPIC)
    assert refused.status_code == 403
    assert "issued for device UDID-OTA, not UDID-BRAND-NEW" in refused.text
    (line,) = [entry for entry in logs if entry["event"] == "mdm_refused"]
    assert (line["device_id"], line["certificate_device"]) == ("UDID-BRAND-NEW", "UDID-OTA")
    assert await server.services.storage.get_enrollment("UDID-BRAND-NEW") is None  # type: ignore[attr-defined]
    await server.enroll(bound)
    await _victim_still_works(server, bound)


async def test_a_device_moves_to_a_certificate_issued_for_its_udid(server: Server) -> None:
    """Re-enrolled over the air while the server still thinks it enrolled (its CheckOut was
    lost): the new certificate names this UDID, so it takes over from the old one."""
    old = await server.device("UDID-M", 127)
    await server.enroll(old)
    new = await server.device("UDID-M", 128, binding=Binding(device_id="UDID-M"))
    await server.enroll(new)
    stale = await server.report(old, "Idle")
    assert (stale.status_code, "not the one bound" in stale.text) == (403, True)
    await _victim_still_works(server, new)


async def test_a_renewal_moves_its_own_device_only(server: Server) -> None:
    device = await server.device("UDID-R", 129)
    other = await server.device("UDID-O", 130)
    await server.enroll(device)
    await server.enroll(other)
    renewed = await server.device(
        "UDID-R", 131, binding=Binding(renewal_of=device.cert.serial_number)
    )
    others_renewal = await server.device(
        "UDID-R", 132, binding=Binding(renewal_of=other.cert.serial_number)
    )
    refused = await server.checkin(others_renewal, "Authenticate", Topic=TOPIC)
    assert refused.status_code == 403
    await server.enroll(renewed)
    await _victim_still_works(server, renewed)
    await _victim_still_works(server, other)


async def _end(server: Server, device: Device, how: str) -> None:
    if how == "checked_out":
        assert (await server.checkin(device, "CheckOut")).status_code == 200
    elif how == "retired":
        unconfirmed = await _api(server, "POST", f"/api/v1/devices/{device.udid}/retire", json={})
        assert unconfirmed.status_code == 422
        assert "confirm" in unconfirmed.text
        retired = await _api(
            server,
            "POST",
            f"/api/v1/devices/{device.udid}/retire",
            json={"confirm": True, "forget": True},
        )
        assert (retired.status_code, retired.json()["state"]) == (200, "retired")
        assert retired.json()["command_uuid"] is None
        revoked = await server.report(device, "Idle")  # the old certificate is done for
        assert (revoked.status_code, "revoked" in revoked.text) == (403, True)
    else:
        erase = await server.queue("EraseDevice", {}, device)
        offered = plistlib.loads((await server.report(device, "Idle")).content)["CommandUUID"]
        # The query queued first comes first; "not now" lets the erase through.
        answer = await server.report(device, "NotNow", CommandUUID=offered)
        assert plistlib.loads(answer.content)["CommandUUID"] == erase
        assert (await server.report(device, "Acknowledged", CommandUUID=erase)).status_code == 200


@pytest.mark.parametrize("how", ["checked_out", "retired", "erased"])
async def test_an_ended_enrollment_lets_the_device_enroll_afresh(server: Server, how: str) -> None:
    device = await server.device("UDID-END", 133)
    await server.enroll(device)
    leftover = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, device)
    await _end(server, device, how)
    shown = (await _api(server, "GET", "/api/v1/devices/UDID-END")).json()
    assert (shown["enrolled"], shown["state"]) == (False, how)
    commands = (await _api(server, "GET", "/api/v1/devices/UDID-END/commands")).json()
    assert {c["command_uuid"]: c["status"] for c in commands}[leftover] == "cancelled"
    again = await server.device("UDID-END", 134)
    await server.enroll(again)
    await _victim_still_works(server, again)


async def test_retiring_an_unknown_device_is_a_404(server: Server) -> None:
    missing = await _api(server, "POST", "/api/v1/devices/NOPE/retire", json={"confirm": True})
    assert (missing.status_code, "no device NOPE" in missing.text) == (404, True)


async def test_retiring_a_device_that_is_there_removes_its_enrollment_profile(
    server: Server,
) -> None:
    device = await server.device("UDID-LEAVING", 135)
    await server.enroll(device)
    retired = await _api(
        server, "POST", "/api/v1/devices/UDID-LEAVING/retire", json={"confirm": True}
    )
    assert (retired.status_code, retired.json()["state"]) == (200, "enrolled")
    command_uuid = retired.json()["command_uuid"]
    offered = plistlib.loads((await server.report(device, "Idle")).content)
    assert offered["CommandUUID"] == command_uuid
    assert offered["Command"] == {
        "RequestType": "RemoveProfile",
        "Identifier": "org.orchardist.enrollment",
    }
    await server.report(device, "Acknowledged", CommandUUID=command_uuid)
    assert (await server.checkin(device, "CheckOut")).status_code == 200  # as iOS does then
    shown = (await _api(server, "GET", "/api/v1/devices/UDID-LEAVING")).json()
    assert (shown["enrolled"], shown["state"]) == (False, "checked_out")
    again = await _api(
        server, "POST", "/api/v1/devices/UDID-LEAVING/retire", json={"confirm": True}
    )
    assert (again.status_code, "use forget" in again.text) == (409, True)
