"""Enrollments and the command queue, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import (
    DeviceFacts,
    IssuedCertificate,
    NewCommand,
    ReportOutcome,
    TargetStatus,
)
from orchardist.storage.sql.repositories import SqlStorage, open_storage

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FACTS = DeviceFacts("UDID-1", "com.apple.mgmt.test", serial_number="C02XX", os_version="18.1")


async def _enrolled(storage: SqlStorage, device: str = "UDID-1") -> None:
    await storage.authenticate(FACTS.__class__(device, FACTS.topic), "a" * 64, NOW)
    await storage.token_update(
        device, token=b"\x01" * 32, push_magic="M", unlock_token=b"U", now=NOW
    )


def _command(uuid: str, priority: int = 0, expires_at: datetime | None = None) -> NewCommand:
    return NewCommand(
        uuid, "DeviceInformation", f"<plist>{uuid}</plist>".encode(), priority, expires_at
    )


async def test_enrollment_lifecycle(storage: SqlStorage) -> None:
    await storage.authenticate(FACTS, "a" * 64, NOW)
    fresh = await storage.get_enrollment("UDID-1")
    assert fresh is not None
    assert (fresh.enrolled, fresh.identity_sha256, fresh.facts) == (False, "a" * 64, FACTS)
    later = NOW + timedelta(minutes=1)
    assert await storage.token_update(
        "UDID-1", token=b"t", push_magic="M1", unlock_token=b"U", now=later
    )
    assert await storage.token_update(
        "UDID-1", token=b"t2", push_magic="M2", unlock_token=None, now=later
    )
    enrolled = await storage.get_enrollment("UDID-1")
    assert enrolled is not None
    assert (enrolled.enrolled, enrolled.token, enrolled.push_magic) == (True, b"t2", "M2")
    assert enrolled.unlock_token == b"U"  # a TokenUpdate without one keeps it
    assert enrolled.enrolled_at == later
    assert await storage.check_out("UDID-1", later)
    gone = await storage.get_enrollment("UDID-1")
    assert gone is not None
    assert (gone.enrolled, gone.checked_out_at) == (False, later)
    assert not await storage.token_update(
        "NOPE", token=b"t", push_magic="M", unlock_token=None, now=NOW
    )
    assert not await storage.check_out("NOPE", NOW)
    assert [e.device_id for e in await storage.list_enrollments()] == ["UDID-1"]


async def test_bootstrap_token(storage: SqlStorage) -> None:
    await _enrolled(storage)
    assert await storage.set_bootstrap_token("UDID-1", b"boot")
    enrollment = await storage.get_enrollment("UDID-1")
    assert enrollment is not None
    assert enrollment.bootstrap_token == b"boot"
    assert not await storage.set_bootstrap_token("NOPE", b"x")


async def test_priority_then_creation_order(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("C1"), ["UDID-1"], NOW)
    await storage.enqueue(_command("C2"), ["UDID-1"], NOW + timedelta(seconds=1))
    await storage.enqueue(_command("C3", priority=5), ["UDID-1"], NOW + timedelta(seconds=2))
    order = []
    report = None
    while (exchange := await storage.exchange("UDID-1", report, NOW)).next_command:
        uuid, body = exchange.next_command
        assert body == f"<plist>{uuid}</plist>".encode()
        order.append(uuid)
        report = (uuid, TargetStatus.ACKNOWLEDGED, b"<ack/>")
    assert order == ["C3", "C1", "C2"]


async def test_answered_once_never_sent_again(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("C1"), ["UDID-1"], NOW)
    assert (await storage.exchange("UDID-1", None, NOW)).next_command is not None
    stored = await storage.exchange("UDID-1", ("C1", TargetStatus.ACKNOWLEDGED, b"first"), NOW)
    again = await storage.exchange("UDID-1", ("C1", TargetStatus.ERROR, b"second"), NOW)
    assert (stored.outcome, again.outcome) == (ReportOutcome.STORED, ReportOutcome.DUPLICATE)
    (target,) = await storage.command_targets("C1", NOW)
    assert (target.status, target.result) == (TargetStatus.ACKNOWLEDGED, b"first")
    assert (await storage.exchange("UDID-1", None, NOW)).next_command is None


async def test_sent_but_unanswered_is_offered_again(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("C1"), ["UDID-1"], NOW)
    first = await storage.exchange("UDID-1", None, NOW)
    second = await storage.exchange("UDID-1", None, NOW)  # the answer never arrived
    assert first.next_command == second.next_command


async def test_not_now_waits_for_the_next_session(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("C1"), ["UDID-1"], NOW)
    await storage.enqueue(_command("C2"), ["UDID-1"], NOW + timedelta(seconds=1))
    assert (await storage.exchange("UDID-1", None, NOW)).next_command[0] == "C1"  # type: ignore[index]
    after_not_now = await storage.exchange("UDID-1", ("C1", TargetStatus.NOT_NOW, b"nn"), NOW)
    assert after_not_now.next_command[0] == "C2"  # type: ignore[index]
    done = await storage.exchange("UDID-1", ("C2", TargetStatus.ACKNOWLEDGED, b"ok"), NOW)
    assert done.next_command is None  # C1 is not offered again in this session
    next_session = await storage.exchange("UDID-1", None, NOW)
    assert next_session.next_command[0] == "C1"  # type: ignore[index]


async def test_unknown_report_stores_nothing(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("C1"), ["UDID-1"], NOW)
    result = await storage.exchange(
        "UDID-1", ("NOT-A-COMMAND", TargetStatus.ACKNOWLEDGED, b"x"), NOW
    )
    assert result == result.__class__(ReportOutcome.UNKNOWN, None)
    other_device = await storage.exchange("UDID-2", ("C1", TargetStatus.ACKNOWLEDGED, b"x"), NOW)
    assert other_device.outcome == ReportOutcome.UNKNOWN
    (target,) = await storage.command_targets("C1", NOW)
    assert target.status == TargetStatus.QUEUED


async def test_expired_commands_are_never_sent(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("OLD", expires_at=NOW + timedelta(minutes=5)), ["UDID-1"], NOW)
    later = NOW + timedelta(minutes=6)
    assert (await storage.exchange("UDID-1", None, later)).next_command is None
    (target,) = await storage.command_targets("OLD", later)
    assert target.status == TargetStatus.EXPIRED


async def test_authenticate_cancels_the_old_queue(storage: SqlStorage) -> None:
    await _enrolled(storage)
    await storage.enqueue(_command("C1"), ["UDID-1"], NOW)
    await storage.authenticate(FACTS, "b" * 64, NOW)
    (target,) = await storage.command_targets("C1", NOW)
    assert target.status == TargetStatus.CANCELLED
    enrollment = await storage.get_enrollment("UDID-1")
    assert enrollment is not None
    assert (enrollment.enrolled, enrollment.identity_sha256) == (False, "b" * 64)


async def test_fan_out_and_survival_across_restarts(storage: SqlStorage, backend: str) -> None:
    devices = [f"UDID-{index}" for index in range(5)]
    for device in devices:
        await _enrolled(storage, device)
    assert await storage.enqueue(_command("ALL"), [*devices, devices[0]], NOW) == 5
    url = _url_of(storage)
    reopened = await open_storage(url)
    try:
        assert len(await reopened.command_targets("ALL", NOW)) == 5
        assert (await reopened.exchange("UDID-3", None, NOW)).next_command is not None
    finally:
        await reopened.close()


def _url_of(storage: SqlStorage) -> str:
    engine = storage.database.engine  # type: ignore[attr-defined]
    return engine.url.render_as_string(hide_password=False)  # type: ignore[no-any-return]


async def test_device_ids_without_whole_rows(storage: SqlStorage) -> None:
    await _enrolled(storage, "UDID-2")
    await _enrolled(storage, "UDID-1")
    await storage.authenticate(FACTS.__class__("UDID-3", FACTS.topic), "b" * 64, NOW)
    assert await storage.device_ids() == ["UDID-1", "UDID-2", "UDID-3"]
    assert await storage.device_ids(enrolled=True) == ["UDID-1", "UDID-2"]
    assert await storage.device_ids(["UDID-3", "NOPE", "UDID-1", "UDID-1"]) == ["UDID-1", "UDID-3"]
    assert await storage.device_ids(["UDID-3"], enrolled=True) == []


async def test_the_idle_state_in_one_query(storage: SqlStorage) -> None:
    assert await storage.idle_state("UDID-1", NOW) is None
    serial = 0x1D1E
    await storage.add_certificate(
        IssuedCertificate(
            serial=serial,
            subject="CN=UDID-1",
            not_before=NOW,
            not_after=NOW + timedelta(days=30),
            sha256="a" * 64,
            der=b"\x30\x82" + serial.to_bytes(20, "big"),
        )
    )
    await _enrolled(storage)
    state = await storage.idle_state("UDID-1", NOW)
    assert state is not None
    assert (state.identity_sha256, state.certificate_valid, state.pending) == (
        "a" * 64,
        True,
        False,
    )
    assert state.last_seen_at == NOW  # the TokenUpdate's
    await storage.touch("UDID-1", NOW + timedelta(minutes=5))
    touched = await storage.idle_state("UDID-1", NOW)
    assert touched is not None
    assert touched.last_seen_at == NOW + timedelta(minutes=5)

    async def pending(at: datetime = NOW) -> bool:
        found = await storage.idle_state("UDID-1", at)
        assert found is not None
        return found.pending

    await storage.enqueue(_command("C1", expires_at=NOW + timedelta(hours=1)), ["UDID-1"], NOW)
    assert await pending()
    assert not await pending(NOW + timedelta(hours=2))  # only expired commands wait
    await storage.exchange("UDID-1", None, NOW)  # sent, unanswered: still pending
    assert await pending()
    await storage.exchange("UDID-1", ("C1", TargetStatus.NOT_NOW, b"nn"), NOW)
    assert await pending()  # offered again at the next Idle
    await storage.exchange("UDID-1", ("C1", TargetStatus.ACKNOWLEDGED, b"ok"), NOW)
    assert not await pending()
    await storage.revoke_certificate(serial, NOW)
    revoked = await storage.idle_state("UDID-1", NOW)
    assert revoked is not None
    assert not revoked.certificate_valid


def _certificate(serial: int, sha256: str, renewal_of: int | None = None) -> IssuedCertificate:
    return IssuedCertificate(
        serial=serial,
        subject=f"CN={serial}",
        not_before=NOW,
        not_after=NOW + timedelta(days=30),
        sha256=sha256,
        der=b"\x30\x82" + serial.to_bytes(20, "big"),
        device_id="UDID-1" if renewal_of else None,
        renewal_of=renewal_of,
    )


async def test_binding_state_reads_what_authenticate_checks(storage: SqlStorage) -> None:
    first, renewal = _certificate(2**127 + 1, "a" * 64), _certificate(7, "b" * 64, 2**127 + 1)
    for cert in (first, renewal):
        await storage.add_certificate(cert)
    unknown = await storage.binding_state(99, "UDID-1")
    assert unknown.presented is None
    fresh = await storage.binding_state(first.serial, "UDID-1")
    assert (fresh.presented, fresh.current_sha256, fresh.bound_elsewhere) == (first, None, None)
    await _enrolled(storage)  # bound to "a" * 64: `first`
    moving = await storage.binding_state(renewal.serial, "UDID-1")
    assert moving.presented == renewal
    assert (moving.current_sha256, moving.current_serial) == ("a" * 64, first.serial)
    assert (moving.current_ended, moving.bound_elsewhere) == (False, None)
    other = await storage.binding_state(first.serial, "UDID-2")
    assert (other.bound_elsewhere, other.current_sha256) == ("UDID-1", None)
    await storage.check_out("UDID-1", NOW)
    assert (await storage.binding_state(renewal.serial, "UDID-1")).current_ended


async def test_authenticate_fits_what_a_device_reports(storage: SqlStorage) -> None:
    long = DeviceFacts("UDID-1", "com.apple.mgmt.test", device_name="x\x00" * 300)
    await storage.authenticate(long, "a" * 64, NOW)
    await storage.token_update("UDID-1", token=b"t", push_magic="M" * 300, unlock_token=None,
                               now=NOW)  # fmt: skip
    again = await storage.get_enrollment("UDID-1")
    assert again is not None
    assert (again.facts.device_name, again.push_magic) == ("x" * 255, "M" * 255)
    assert (again.enrolled, again.enrolled_at, again.unlock_token) == (True, NOW, None)
