"""Stored compliance verdicts on every backend: their inputs read in bulk, which ones are out
of date, counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchardist.storage import DeviceFacts, IssuedCertificate
from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance, LibraryProfile
from orchardist.storage.inventory import InventoryUpdate, Profile
from orchardist.storage.profiles import DeviceProfile, ProfileState
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio
LATER = NOW + timedelta(hours=1)


def _verdict(device_id: str, **fields: Any) -> DeviceCompliance:
    values = {"status": ComplianceStatus.COMPLIANT, "reasons": (), "evaluated_at": NOW,
              "rules": "r1", **fields}  # fmt: skip
    return DeviceCompliance(device_id, **values)


async def test_inputs_are_read_in_bulk(storage: SqlStorage) -> None:
    await add_device(storage, Spec("D-1", identity_sha256="1" * 64))
    await add_device(storage, Spec("D-2", identity_sha256="2" * 64))
    not_after = NOW + timedelta(days=20)
    await storage.add_certificate(
        IssuedCertificate(7, "CN=D-1", NOW, not_after, "1" * 64, b"der", device_id="D-1")
    )
    profiles = (
        Profile("com.example.wifi", "Wi-Fi", "U", True),
        Profile("other", None, None, False),
    )
    update = InventoryUpdate(security={"PasscodePresent": True}, profiles=profiles)
    await storage.apply_inventory("D-1", update, NOW)
    await storage.save_device_profiles(
        [DeviceProfile("D-1", "com.example.vpn", 2, 1, ProfileState.PENDING, None, None, NOW),
         DeviceProfile("D-1", "unasked", 1, 1, ProfileState.INSTALLED, None, None, NOW)]
    )  # fmt: skip
    one, two = await storage.compliance_inputs(
        ["D-2", "D-1", "NOPE", "D-1"], ["com.example.wifi", "com.example.vpn"]
    )
    assert one.enrollment.device_id == "D-1"
    assert (one.has_inventory, dict(one.security)) == (True, {"PasscodePresent": True})
    assert one.listed_profiles == {"com.example.wifi"}  # only what was asked for
    assert one.library_profiles == (LibraryProfile("com.example.vpn", ProfileState.PENDING, 1),)
    assert one.identity_not_after == not_after
    assert (two.has_inventory, two.security, two.listed_profiles) == (False, {}, frozenset())
    assert two.identity_not_after is None  # not a certificate of ours
    assert await storage.compliance_inputs([]) == []


async def test_round_trip_and_counts(storage: SqlStorage) -> None:
    for n in range(4):
        await add_device(storage, Spec(f"D-{n}"))
    broken = _verdict("D-1", status=ComplianceStatus.NON_COMPLIANT, reasons=("no passcode",),
                      recheck_at=LATER, stale=True)  # fmt: skip
    await storage.save_compliance([_verdict("D-0"), broken])
    assert await storage.get_compliance("D-1") == broken
    assert await storage.get_compliance("D-3") is None
    fixed = _verdict("D-1", evaluated_at=LATER)
    await storage.save_compliance([fixed])  # replaces
    assert await storage.get_compliance("D-1") == fixed
    assert await storage.compliance_counts() == {
        ComplianceStatus.COMPLIANT: 2, ComplianceStatus.NON_COMPLIANT: 0,
        ComplianceStatus.UNKNOWN: 2,  # never evaluated
    }  # fmt: skip


async def test_which_verdicts_are_out_of_date(storage: SqlStorage) -> None:
    for n in range(7):
        await add_device(storage, Spec(f"D-{n}", seen_at=NOW - timedelta(minutes=5)))
    assert await storage.compliance_due(NOW, "r1") == [f"D-{n}" for n in range(7)]  # none yet
    await storage.save_compliance(
        [_verdict("D-0"), _verdict("D-1", recheck_at=LATER), _verdict("D-2", stale=True),
         _verdict("D-3", stale=True), _verdict("D-4"), _verdict("D-5")]
    )  # fmt: skip
    assert await storage.compliance_due(NOW, "r1") == ["D-6"]
    assert await storage.compliance_due(NOW, "r2") == [f"D-{n}" for n in range(7)]  # new rules
    assert await storage.compliance_due(LATER, "r1") == ["D-1", "D-6"]  # its recheck time
    await storage.exchange("D-2", None, LATER)  # a stale device checks in
    await storage.exchange("D-4", None, LATER)  # a device that was not stale: no matter
    await storage.apply_inventory("D-5", InventoryUpdate(security={}), LATER)
    await storage.authenticate((await _facts(storage, "D-0")), "b" * 64, LATER)  # re-enrolls
    await storage.check_out("D-3", LATER)
    assert await storage.compliance_due(NOW, "r1") == ["D-0", "D-2", "D-3", "D-5", "D-6"]
    assert await storage.compliance_due(NOW, "r1", after="D-2", limit=2) == ["D-3", "D-5"]


async def _facts(storage: SqlStorage, device_id: str) -> DeviceFacts:
    enrollment = await storage.get_enrollment(device_id)
    assert enrollment is not None
    return enrollment.facts
