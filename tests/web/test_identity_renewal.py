"""Identity renewal (mdm/renewal.py, mdm/binding.py `renews`): a virtual device whose
identity is about to expire gets the enrollment profile again, once; it enrolls a new
identity and keeps working with it, its queue kept; the old identity is refused from then on.
With manual approval the renewal's request is held, and approved it is still a renewal.
A certificate renewed with SCEP RenewalReq moves the enrollment on its first request. A
device re-enrolled afresh for its UDID (no renewal) starts a new enrollment: its queue goes.
The pass's clock is moved on instead of issuing short-lived certificates."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from orchardist.mdm.renewal import IdentityRenewal
from orchardist.pki.ca import fingerprint_sha256
from orchardist.scep.issuance import Binding
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.profile import read_profile
from tests.keys import rsa_key
from tests.web.mdm_server import Device, Server, running

pytestmark = pytest.mark.anyio


def _renewal(server: Server, days_on: int) -> IdentityRenewal:
    services = server.services
    assert services.enrollment is not None
    later = datetime.now(UTC) + timedelta(days=days_on)
    return IdentityRenewal(
        services.storage,
        services.storage,
        services.enrollment,
        renew_before=timedelta(days=30),
        clock=lambda: later,
    )


async def _enrolled(server: Server) -> VirtualDevice:
    assert server.services.enrollment is not None
    plan = read_profile(await server.services.enrollment.profile())
    device = VirtualDevice(plan, 7, rsa_key(140), server.http)
    await device.enroll()
    return device


async def test_a_device_about_to_expire_renews_and_keeps_working(server: Server) -> None:
    device = await _enrolled(server)
    assert device.identity is not None
    old = Device(device.udid, device.key, device.identity.certificate)
    waiting = await server.queue("DeviceLock", {}, old)
    validity = server.services.settings.certificate_validity_days

    assert await _renewal(server, validity - 100).run_pass() == []  # not due yet
    due = _renewal(server, validity - 10)
    assert await due.run_pass() == [device.udid]
    assert await due.run_pass() == []  # queued once

    stats = await device.session()  # installs the profile: new SCEP identity, Authenticate
    assert stats.commands == 2  # the InstallProfile and the DeviceLock queued before it
    new_cert = device.identity.certificate
    assert new_cert.serial_number != old.cert.serial_number
    storage = server.services.storage
    enrollment = await storage.get_enrollment(device.udid)
    assert enrollment is not None
    assert (enrollment.enrolled, enrollment.identity_sha256) == (True, fingerprint_sha256(new_cert))
    states = {t.command_uuid: t.status for t in await storage.device_commands(device.udid, _now())}
    assert states[waiting] == "acknowledged"
    record = await storage.get_certificate(new_cert.serial_number)
    assert record is not None
    assert (record.device_id, record.renewal_of) == (device.udid, old.cert.serial_number)

    fresh = await server.queue("DeviceInformation", {"Queries": ["OSVersion"]}, old)
    assert (await device.session()).commands == 1
    states = {t.command_uuid: t.status for t in await storage.device_commands(device.udid, _now())}
    assert states[fresh] == "acknowledged"
    assert (await server.report(old, "Idle")).status_code == 403  # the old identity is done


async def test_a_renewal_held_for_approval_keeps_the_queue(backend: str, tmp_path: Path) -> None:
    """With scep_manual_approval the re-delivered profile's request waits for an
    administrator like any other; approved, its certificate still renews the old one (the
    held request kept what its challenge renews), so the device keeps its queue."""
    async with running(backend, tmp_path, scep_manual_approval=True) as server:
        approved = _approve_when_held(server)
        device = await _enrolled(server)
        assert device.identity is not None
        old = Device(device.udid, device.key, device.identity.certificate)
        waiting = await server.queue("DeviceLock", {}, old)
        validity = server.services.settings.certificate_validity_days
        assert await _renewal(server, validity - 10).run_pass() == [device.udid]

        assert (await device.session()).commands == 2  # the InstallProfile, the DeviceLock
        assert len(approved) == 2  # the first enrollment's request, then the renewal's
        storage = server.services.storage
        held = await storage.get_transaction(approved[1])
        assert held is not None
        assert (held.device_id, held.renewal_of) == (device.udid, old.cert.serial_number)
        new_cert = device.identity.certificate
        record = await storage.get_certificate(new_cert.serial_number)
        assert record is not None
        assert (record.device_id, record.renewal_of) == (device.udid, old.cert.serial_number)
        enrollment = await storage.get_enrollment(device.udid)
        assert enrollment is not None
        assert enrollment.identity_sha256 == fingerprint_sha256(new_cert)
        commands = await storage.device_commands(device.udid, _now())
        assert {t.command_uuid: t.status for t in commands}[waiting] == "acknowledged"


def _approve_when_held(server: Server) -> list[str]:
    """An administrator who approves each SCEP request as soon as it is held, before the
    device asks again (the simulator resends its PKCSReq); the transactionIDs approved."""
    approved: list[str] = []

    async def approve(response: httpx.Response) -> None:
        if response.request.url.params.get("operation") != "PKIOperation":
            return
        for tx in await server.services.approvals.pending():
            await server.services.approvals.approve(tx.transaction_id)
            approved.append(tx.transaction_id)

    hooks = server.http.event_hooks
    server.http.event_hooks = {**hooks, "response": [*hooks["response"], approve]}
    return approved


async def test_a_device_re_enrolled_afresh_for_its_udid_loses_the_old_queue(
    server: Server,
) -> None:
    """Wiped by hand, no CheckOut, enrolled again with a one-time challenge minted for its
    UDID (as over-the-air enrollment and enrollment links mint them): the certificate names
    the UDID but renews nothing, so its Authenticate starts a new enrollment, as Apple has
    it, and what was queued for the old one (an EraseDevice here) never runs."""
    device = await _enrolled(server)
    assert device.identity is not None
    old = Device(device.udid, device.key, device.identity.certificate)
    erase = await server.queue("EraseDevice", {}, old)
    enrollment = server.services.enrollment
    assert enrollment is not None
    challenge, _ = await enrollment.challenges.issue(device_id=device.udid)
    plan = read_profile(await enrollment.profile(challenge=challenge))
    wiped = VirtualDevice(plan, 7, rsa_key(143), server.http)  # same UDID, a new key
    assert wiped.udid == device.udid
    await wiped.enroll()

    assert wiped.identity is not None
    new_cert = wiped.identity.certificate
    storage = server.services.storage
    record = await storage.get_certificate(new_cert.serial_number)
    assert record is not None
    assert (record.device_id, record.renewal_of) == (device.udid, None)
    current = await storage.get_enrollment(device.udid)
    assert current is not None
    assert (current.enrolled, current.identity_sha256) == (True, fingerprint_sha256(new_cert))
    states = {t.command_uuid: t.status for t in await storage.device_commands(device.udid, _now())}
    assert states[erase] == "cancelled"
    assert (await wiped.session()).commands == 0  # nothing from the old enrollment is sent
    assert (await server.report(old, "Idle")).status_code == 403


async def test_a_renewal_request_certificate_moves_the_enrollment_on_first_use(
    server: Server,
) -> None:
    old = await server.device("UDID-RR", 141)
    await server.enroll(old)
    renewed = await server.device(
        "UDID-RR", 142, binding=Binding(renewal_of=old.cert.serial_number)
    )
    waiting = await server.queue("DeviceLock", {}, old)
    idle = await server.report(renewed, "Idle")  # no Authenticate: RenewalReq vouched for it
    assert idle.status_code == 200
    assert plistlib.loads(idle.content)["CommandUUID"] == waiting
    assert (await server.report(old, "Idle")).status_code == 403
    plain = await server.device("UDID-RR", 143, binding=Binding(device_id="UDID-RR"))
    # Issued for the UDID but not a renewal: only an Authenticate may move to it.
    assert (await server.report(plain, "Idle")).status_code == 403


def _now() -> datetime:
    return datetime.now(UTC)
