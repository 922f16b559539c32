"""Stored verdicts kept current on every backend: at once on a result the rules read, and by
the periodic pass when time, a check-in or the rules change them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from orchardist.mdm.compliance import ComplianceRules
from orchardist.mdm.compliance_evaluator import ComplianceEvaluator
from orchardist.storage import IssuedCertificate
from orchardist.storage.compliance import ComplianceStatus
from orchardist.storage.inventory import InventoryUpdate
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _status(storage: SqlStorage, device_id: str) -> tuple[str, tuple[str, ...]]:
    verdict = await storage.get_compliance(device_id)
    assert verdict is not None
    return verdict.status.value, verdict.reasons


async def test_the_periodic_pass_follows_time_and_check_ins(storage: SqlStorage) -> None:
    await add_device(storage, Spec("D-1", seen_at=NOW, identity_sha256="1" * 64))
    await add_device(storage, Spec("D-2", seen_at=NOW, identity_sha256="2" * 64))
    await storage.add_certificate(
        IssuedCertificate(1, "CN=D-1", NOW, NOW + timedelta(days=40), "1" * 64, b"d")
    )
    await storage.add_certificate(
        IssuedCertificate(2, "CN=D-2", NOW, NOW + timedelta(days=400), "2" * 64, b"d")
    )
    rules = ComplianceRules(checked_in_days=7, identity_certificate_days=30)
    clock = Clock(NOW)
    evaluator = ComplianceEvaluator(storage, rules, clock=clock)
    assert await evaluator.recheck() == 2  # never evaluated
    assert await _status(storage, "D-1") == ("compliant", ())
    assert await evaluator.recheck() == 0  # nothing out of date

    clock.now = NOW + timedelta(days=8)  # D-1's certificate is 32 days from expiry
    await storage.exchange("D-2", None, clock.now)  # D-2 checks in; D-1 does not
    assert await evaluator.recheck() == 2  # both: their check-in deadline (day 7) came
    assert await _status(storage, "D-1") == (
        "non_compliant",
        ("no check-in for 8 days (the limit is 7)",),
    )
    assert await _status(storage, "D-2") == ("compliant", ())

    clock.now = NOW + timedelta(days=11)
    await storage.exchange("D-1", None, clock.now)  # the stale device is back
    assert await evaluator.recheck() == 1  # D-1: seen since; D-2 is not due until day 15
    assert await _status(storage, "D-1") == (
        "non_compliant",
        ("the identity certificate expires on 2027-01-07, within 30 days",),
    )
    assert await _status(storage, "D-2") == ("compliant", ())


async def test_new_rules_redo_every_verdict(storage: SqlStorage) -> None:
    for n in range(3):
        await add_device(storage, Spec(f"D-{n}", os_version="16.4"))
    clock = Clock(NOW)
    assert await ComplianceEvaluator(storage, ComplianceRules(), clock=clock).recheck() == 3
    stricter = ComplianceEvaluator(
        storage, ComplianceRules(min_os_version={"iOS": "17.0"}), clock=clock
    )
    assert await stricter.recheck() == 3
    assert await stricter.recheck() == 0
    assert await _status(storage, "D-0") == (
        "non_compliant",
        ("iOS 16.4 is below the minimum 17.0",),
    )


async def test_a_result_the_rules_read_re_evaluates_the_device(storage: SqlStorage) -> None:
    await add_device(storage, Spec("D-1"))
    evaluator = ComplianceEvaluator(storage, ComplianceRules(passcode=True), clock=Clock(NOW))
    await evaluator.on_enrolled("D-1")
    assert (await _status(storage, "D-1"))[0] == ComplianceStatus.UNKNOWN.value
    update = InventoryUpdate(security={"PasscodePresent": False})
    await storage.apply_inventory("D-1", update, NOW)
    await evaluator.on_result("D-1", "C-1", "DeviceLock", True, {})  # not an input: no change
    assert (await _status(storage, "D-1"))[0] == "unknown"
    await evaluator.on_result("D-1", "C-2", "SecurityInfo", True, {})
    assert await _status(storage, "D-1") == ("non_compliant", ("no passcode",))


async def test_a_profile_result_re_evaluates_only_when_profiles_are_required(
    storage: SqlStorage,
) -> None:
    await add_device(storage, Spec("D-1"))
    await add_device(storage, Spec("D-2"))
    plain = ComplianceEvaluator(storage, ComplianceRules(passcode=True), clock=Clock(NOW))
    required = ComplianceEvaluator(
        storage,
        ComplianceRules(passcode=True, required_profiles=("com.example.wifi",)),
        clock=Clock(NOW),
    )
    for evaluator, device in ((plain, "D-1"), (required, "D-2")):
        await evaluator.on_enrolled(device)
        await storage.apply_inventory(
            device, InventoryUpdate(security={"PasscodePresent": False}), NOW
        )
        await evaluator.on_result(device, "C-1", "InstallProfile", True, {})
    # Without required profiles an InstallProfile answer cannot change a verdict: not read.
    assert (await _status(storage, "D-1"))[0] == "unknown"
    assert (await _status(storage, "D-2"))[0] == "non_compliant"
