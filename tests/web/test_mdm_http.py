"""`/mdm/checkin` and `/mdm/connect` end to end, in process, on every storage backend."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from orchardist.mdm.reports import OFF_LOOP_BYTES
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep.client import make_csr
from orchardist.storage import TargetStatus
from orchardist.storage.sql.tables import enrollments
from orchardist.web.app import create_app
from orchardist.web.mdm import CHECKIN_TYPE as CHECKIN
from orchardist.web.mdm import _is_checkin
from orchardist.wiring import open_services
from tests.keys import rsa_key
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio


async def test_enrollment_and_a_command_round_trip(server: Server) -> None:
    device = await server.device("UDID-A", 80)
    await server.enroll(device)
    enrollment = await server.services.storage.get_enrollment("UDID-A")  # type: ignore[attr-defined]
    assert (enrollment.enrolled, enrollment.facts.serial_number, enrollment.unlock_token) == (
        True,
        "S1",
        b"U",
    )

    command_uuid = await server.queue("DeviceLock", {"Message": "Call IT"}, device)
    idle = await server.report(device, "Idle")
    assert idle.status_code == 200
    sent = plistlib.loads(idle.content)
    assert sent["CommandUUID"] == command_uuid
    assert sent["Command"] == {"RequestType": "DeviceLock", "Message": "Call IT"}

    done = await server.report(
        device, "Acknowledged", CommandUUID=command_uuid, MessageResult="Success"
    )
    assert (done.status_code, done.content) == (200, b"")
    again = await server.report(device, "Acknowledged", CommandUUID=command_uuid)
    assert (again.status_code, again.content) == (200, b"")
    (target,) = await server.services.storage.command_targets(command_uuid, datetime.now(UTC))  # type: ignore[attr-defined]
    assert target.status == TargetStatus.ACKNOWLEDGED
    assert plistlib.loads(target.result)["MessageResult"] == "Success"  # the first answer kept
    assert (await server.report(device, "Idle")).content == b""


async def test_check_ins_besides_authenticate(server: Server) -> None:
    device = await server.device("UDID-B", 81)
    await server.enroll(device)
    assert (
        await server.checkin(device, "UserAuthenticate", UserID="u", DigestResponse="d")
    ).status_code == 410
    assert (
        await server.checkin(device, "SetBootstrapToken", BootstrapToken=b"boot")
    ).status_code == 200
    fetched = await server.checkin(device, "GetBootstrapToken")
    assert plistlib.loads(fetched.content) == {"BootstrapToken": b"boot"}
    # One-URL servers: a check-in PUT to /mdm/connect is a check-in.
    out = await server.checkin(device, "CheckOut", path="/mdm/connect", Topic="com.apple.mgmt.t")
    assert out.status_code == 200
    enrollment = await server.services.storage.get_enrollment("UDID-B")  # type: ignore[attr-defined]
    assert enrollment.enrolled is False


@pytest.mark.parametrize(
    "endpoint",
    ["tokens", "declaration-items", "status", "declaration/configuration/com.example.passcode"],
)
async def test_declarative_management_finds_nothing_here(server: Server, endpoint: str) -> None:
    """Never enabled (no DeclarativeManagement command is sent), so nothing is here: 404,
    which for a declaration makes the device remove it (Apple, "Declarative Management")."""
    device = await server.device("UDID-E", 84)
    await server.enroll(device)
    data = {"Data": b'{"StatusItems": {}}'} if endpoint == "status" else {}
    answer = await server.checkin(device, "DeclarativeManagement", Endpoint=endpoint, **data)
    assert answer.status_code == 404
    assert "no declarative management on this server" in answer.text
    assert endpoint in answer.text


@pytest.mark.parametrize("service", ["com.apple.maid", "com.apple.watch.pairing"])
async def test_get_token_recognizes_no_service_type(server: Server, service: str) -> None:
    """No com.apple.mdm.token capability, so no service type is recognized: 400 (Apple,
    "Get Token")."""
    device = await server.device("UDID-F", 85)
    await server.enroll(device)
    answer = await server.checkin(device, "GetToken", TokenServiceType=service)
    assert answer.status_code == 400
    assert "no token service on this server" in answer.text
    assert service in answer.text


async def test_identity_refusals(server: Server) -> None:
    device = await server.device("UDID-C", 82)
    other = await server.device("UDID-D", 83)
    await server.enroll(device)
    await server.enroll(other)
    body = plistlib.dumps({"Status": "Idle", "UDID": "UDID-C"})

    async def idle(headers: dict[str, str], content: bytes = body) -> httpx.Response:
        return await server.http.put("/mdm/connect", content=content, headers=headers)

    assert (await idle({})).status_code == 403  # no identity at all
    wrong_device = await idle(other.headers(body))
    assert (wrong_device.status_code, "not the one bound" in wrong_device.text) == (403, True)
    forged = device.headers(b"another body")
    assert (await idle(forged)).status_code == 403
    assert (await idle({"Mdm-Signature": "@@@"})).status_code == 403
    await server.services.storage.revoke_certificate(device.cert.serial_number, datetime.now(UTC))
    revoked = await idle(device.headers(body))
    assert (revoked.status_code, "revoked" in revoked.text) == (403, True)


async def test_the_idle_hot_path_sees_a_revocation_at_once(server: Server) -> None:
    """An Idle with nothing queued is answered from one query and the signature cache; the
    certificate's status is read on every request all the same."""
    device = await server.device("UDID-R", 89)
    await server.enroll(device)
    storage = server.services.storage
    enrolled = await storage.get_enrollment("UDID-R")  # type: ignore[attr-defined]
    for _ in range(3):
        idle = await server.report(device, "Idle")
        assert (idle.status_code, idle.content) == (200, b"")
    seen = await storage.get_enrollment("UDID-R")  # type: ignore[attr-defined]
    # Seen a moment ago at TokenUpdate: the Idles do not write it again within a minute.
    assert seen.last_seen_at == enrolled.last_seen_at
    await storage.revoke_certificate(device.cert.serial_number, datetime.now(UTC))
    revoked = await server.report(device, "Idle")
    assert (revoked.status_code, "revoked" in revoked.text) == (403, True)


async def test_answers_write_last_seen_once_a_minute_too(server: Server) -> None:
    """A session of answers writes the device's last_seen_at as Idles do: when it is a
    minute old or more, not on every request (each write updates every index of the row)."""
    device = await server.device("UDID-L", 91)
    await server.enroll(device)
    storage = server.services.storage
    first = await server.queue("DeviceLock", {}, device)
    second = await server.queue("SecurityInfo", {}, device)

    async def seen_at(ago: timedelta | None = None) -> datetime:
        if ago is not None:
            change = update(enrollments).where(enrollments.c.device_id == "UDID-L")
            when = datetime.now(UTC) - ago
            await storage.database.write(
                lambda conn: conn.execute(change.values(last_seen_at=when))
            )
        enrollment = await storage.get_enrollment("UDID-L")  # type: ignore[attr-defined]
        seen: datetime = enrollment.last_seen_at
        return seen

    recently = await seen_at(timedelta(seconds=30))
    assert plistlib.loads((await server.report(device, "Idle")).content)["CommandUUID"] == first
    answer = await server.report(device, "Acknowledged", CommandUUID=first)
    assert plistlib.loads(answer.content)["CommandUUID"] == second
    assert await seen_at() == recently  # two requests, no write
    before = datetime.now(UTC)
    long_ago = await seen_at(timedelta(minutes=2))
    assert (await server.report(device, "Acknowledged", CommandUUID=second)).content == b""
    assert long_ago < before <= await seen_at()


async def test_expired_and_foreign_certificates_cannot_authenticate(server: Server) -> None:
    expired = await server.device("UDID-E", 84, days=10, ago=40)
    assert (await server.checkin(expired, "Authenticate", Topic="t")).status_code == 403
    stranger_ca = CertificateAuthority(*generate_ca("Stranger", "Elsewhere"))
    key = rsa_key(85)
    cert = stranger_ca.issue_client_certificate(
        make_csr(key, "x"), validity_days=5, now=datetime.now(UTC)
    )
    assert (
        await server.checkin(Device("UDID-F", key, cert), "Authenticate", Topic="t")
    ).status_code == 403
    unissued = CertificateAuthority(server.ca.certificate, server.ca.key).issue_client_certificate(
        make_csr(key, "y"), validity_days=5, now=datetime.now(UTC)
    )  # signed by our CA key but never recorded as issued
    assert (
        await server.checkin(Device("UDID-G", key, unissued), "Authenticate", Topic="t")
    ).status_code == 403
    assert await server.services.storage.get_enrollment("UDID-G") is None  # type: ignore[attr-defined]


async def test_bad_input_is_a_4xx_with_a_reason(server: Server) -> None:
    device = await server.device("UDID-H", 86)
    await server.enroll(device)
    garbage = b"<plist><dict><key>Status"
    response = await server.http.put(
        "/mdm/connect", content=garbage, headers=device.headers(garbage)
    )
    assert (response.status_code, "malformed plist" in response.text) == (400, True)
    unknown_type = await server.checkin(device, "Hello")
    assert (unknown_type.status_code, "unknown MessageType" in unknown_type.text) == (400, True)
    unknown_command = await server.report(device, "Acknowledged", CommandUUID="NOPE")
    assert (unknown_command.status_code, "no command NOPE" in unknown_command.text) == (400, True)
    big = plistlib.dumps({"Status": "Idle", "UDID": "UDID-H", "Pad": "x" * 70000})
    assert (
        await server.http.put("/mdm/connect", content=big, headers=device.headers(big))
    ).status_code == 413
    never_authenticated = await server.device("UDID-I", 87)
    assert (await server.report(never_authenticated, "Idle")).status_code == 403
    assert (await server.http.get("/mdm/connect")).status_code == 405  # devices only PUT


async def test_queued_commands_survive_a_restart(server: Server, tmp_path: Path) -> None:
    device = await server.device("UDID-J", 88)
    await server.enroll(device)
    command_uuid = await server.queue("SecurityInfo", {}, device)
    settings = server.services.settings
    reopened = await open_services(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, reopened))
        async with httpx.AsyncClient(transport=transport, base_url="https://mdm.test") as http:
            body = plistlib.dumps({"Status": "Idle", "UDID": device.udid})
            response = await http.put("/mdm/connect", content=body, headers=device.headers(body))
        assert plistlib.loads(response.content)["CommandUUID"] == command_uuid
    finally:
        await reopened.close()


async def test_one_time_enrollment_links(server: Server) -> None:
    assert server.services.enrollment is not None
    url, _ = await server.services.enrollment.new_link()
    path = url.split("://", 1)[1].split("/", 1)[1]
    first = await server.http.get(f"/{path}")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/x-apple-aspen-config"
    signed = cms.verify(first.content, trusted=[server.ca.certificate])
    profile = plistlib.loads(signed.content)
    assert [p["PayloadType"] for p in profile["PayloadContent"]] == [
        "com.apple.security.root",
        "com.apple.security.scep",
        "com.apple.mdm",
    ]
    again = await server.http.get(f"/{path}")
    assert (again.status_code, "used already" in again.text) == (403, True)
    for bogus in ("/mdm/enroll?token=nope", "/mdm/enroll"):
        refused = await server.http.get(bogus)
        assert (refused.status_code, "not valid" in refused.text) == (403, True)


async def test_a_check_in_without_its_content_type_is_found_by_its_message_type(
    server: Server,
) -> None:
    device = await server.device("UDID-L", 90)
    await server.enroll(device)
    body = plistlib.dumps({"MessageType": "CheckOut", "UDID": device.udid, "Topic": "t"})
    # A report's content type, to the ServerURL: only the body says it is a check-in.
    response = await server.http.put("/mdm/connect", content=body, headers=device.headers(body))
    assert response.status_code == 200
    enrollment = await server.services.storage.get_enrollment("UDID-L")  # type: ignore[attr-defined]
    assert enrollment.enrolled is False


def test_only_a_small_body_is_searched_for_a_message_type() -> None:
    small = plistlib.dumps({"MessageType": "CheckOut", "UDID": "U"})
    large = plistlib.dumps({"MessageType": "CheckOut", "UDID": "U", "Pad": "x" * OFF_LOOP_BYTES})
    assert _is_checkin({}, small)
    assert not _is_checkin({}, large)  # read as a report, and refused as one (no Status)
    assert _is_checkin({"content-type": CHECKIN}, large)


async def test_a_result_mentioning_message_type_is_still_a_result(server: Server) -> None:
    device = await server.device("UDID-K", 89)
    await server.enroll(device)
    command_uuid = await server.queue("ProfileList", {}, device)
    assert (
        plistlib.loads((await server.report(device, "Idle")).content)["CommandUUID"] == command_uuid
    )
    nested = [{"PayloadIdentifier": "x", "PayloadContent": [{"MessageType": "odd but legal"}]}]
    stored = await server.report(
        device, "Acknowledged", CommandUUID=command_uuid, ProfileList=nested
    )
    assert (stored.status_code, stored.content) == (200, b"")
    (target,) = await server.services.storage.command_targets(command_uuid, datetime.now(UTC))
    assert target.status == TargetStatus.ACKNOWLEDGED
