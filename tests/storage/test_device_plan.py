"""ProfileStore.device_plan, on every backend: what reconciling one device reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import DeviceFacts, IssuedCertificate
from orchardist.storage.profiles import DeviceProfile, ProfileState, TargetKind
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def _profile(storage: SqlStorage, identifier: str, versions: int = 1) -> None:
    for _ in range(versions):
        await storage.add_profile_version(identifier, identifier, ["x"], b"<plist/>", NOW)


async def test_plan_of_an_enrolled_device(storage: SqlStorage) -> None:
    der = b"\x30\x82" + bytes(20)
    await storage.add_certificate(
        IssuedCertificate(7, "CN=d", NOW, NOW + timedelta(days=1), "a" * 64, der)
    )
    await storage.authenticate(DeviceFacts("D1", "topic"), "a" * 64, NOW)
    assert (await storage.device_plan("D1")).enrolled is False
    await storage.token_update("D1", token=b"t", push_magic="M", unlock_token=None, now=NOW)
    for name in ("all", "direct", "grouped", "elsewhere", "gone"):
        await _profile(storage, f"p.{name}", versions=2 if name == "all" else 1)
    await storage.set_assignments("p.all", TargetKind.ALL, [""], assigned=True)
    await storage.set_assignments("p.direct", TargetKind.DEVICE, ["D1"], assigned=True)
    await storage.set_assignments("p.grouped", TargetKind.GROUP, ["g1"], assigned=True)
    await storage.set_assignments("p.elsewhere", TargetKind.GROUP, ["g2"], assigned=True)
    await storage.set_assignments("p.gone", TargetKind.ALL, [""], assigned=True)
    await storage.delete_profile("p.gone")
    await storage.set_group("g1", ["D1"])
    await storage.set_group("g2", ["D2"])
    row = DeviceProfile("D1", "p.direct", 1, None, ProfileState.PENDING, "C1", None, NOW)
    await storage.save_device_profiles([row])
    plan = await storage.device_plan("D1")
    assert plan.enrolled
    assert dict(plan.wanted) == {"p.all": 2, "p.direct": 1, "p.grouped": 1}
    assert list(plan.rows) == [row]
    assert plan.identity_der == der


async def test_plan_of_an_unknown_device(storage: SqlStorage) -> None:
    await _profile(storage, "p.all")
    await storage.set_assignments("p.all", TargetKind.ALL, [""], assigned=True)
    plan = await storage.device_plan("NOPE")
    assert (plan.enrolled, dict(plan.wanted), list(plan.rows), plan.identity_der) == (
        False, {}, [], None,
    )  # fmt: skip
