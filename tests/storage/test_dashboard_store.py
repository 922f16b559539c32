"""The dashboard's figures from storage, on every backend: who checked in when, what is
pending or failed, what the devices refused, and the OS versions in numeric order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchardist.storage import NewCommand, TargetStatus
from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance
from orchardist.storage.profiles import DeviceProfile, ProfileState
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio


async def test_an_empty_server_has_zero_everywhere(storage: SqlStorage) -> None:
    figures = await storage.dashboard_figures(NOW)
    assert (figures.enrolled, figures.stale, figures.commands_pending) == (0, 0, 0)
    assert figures.os_versions == {}


async def test_the_figures_count_the_fleet(storage: SqlStorage) -> None:
    hour = timedelta(hours=1)
    await add_device(storage, Spec("A", os_version="17.10", seen_at=NOW - hour))
    await add_device(storage, Spec("B", os_version="17.9", seen_at=NOW - 3 * 24 * hour))
    await add_device(storage, Spec("C", os_version="17.9", seen_at=NOW - 30 * 24 * hour))
    await add_device(storage, Spec("D", os_version=None, enrolled_at=None))  # not enrolled
    await add_device(storage, Spec("E", os_version=None))  # enrolled, never seen since
    verdict = DeviceCompliance("B", ComplianceStatus.NON_COMPLIANT, ("no passcode",), NOW, "r")
    await storage.save_compliance([verdict])
    await storage.enqueue(NewCommand("CMD-1", "DeviceInformation", b"<plist/>"), ["A", "B"], NOW)
    await storage.enqueue(NewCommand("OLD", "DeviceLock", b"<plist/>"), ["B"], NOW - 48 * hour)
    await storage.exchange("A", None, NOW)
    await storage.exchange("A", ("CMD-1", TargetStatus.ERROR, b"<plist/>"), NOW)
    await storage.exchange("B", None, NOW - 47 * hour)
    await storage.exchange("B", ("OLD", TargetStatus.ERROR, b"<plist/>"), NOW - 47 * hour)
    refused = DeviceProfile("A", "com.example.wifi", 1, None, ProfileState.FAILED, None, "no", NOW)
    await storage.save_device_profiles([refused])
    figures = await storage.dashboard_figures(NOW + hour)
    assert (figures.enrolled, figures.seen_24h, figures.seen_7d, figures.stale) == (4, 1, 2, 2)
    counts = await storage.compliance_counts()
    assert figures.non_compliant == counts[ComplianceStatus.NON_COMPLIANT] == 1
    assert figures.commands_pending == 1  # B's CMD-1; A's failed within 24 h, B's OLD before
    assert figures.commands_failed_24h == 1
    assert figures.profile_installs_failed == 1
    assert list(figures.os_versions.items()) == [("17.9", 2), ("17.10", 1), ("unknown", 1)]
