"""ProfileWorkStore on every backend: a page's differences computed by the database, a
scheduled install saved only where the row still lacks that version, and a scheduled
install delivered once however many passes try."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchardist.storage import NewCommand
from orchardist.storage.profile_work import WorkScope
from orchardist.storage.profiles import DeviceProfile, ProfileState, TargetKind
from orchardist.storage.sql.repositories import SqlStorage
from tests.profiles.fleet import seed_enrolled

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ID = "com.example.wifi"


async def _fleet(storage: SqlStorage) -> None:
    await seed_enrolled(storage, ["A", "B", "C"], NOW)
    await storage.add_profile_version(ID, "Wi-Fi", [], b"<plist/>", NOW)
    await storage.set_assignments(ID, TargetKind.ALL, [""], assigned=True)


def _row(device: str, state: ProfileState, command: str | None, version: int = 1) -> DeviceProfile:
    return DeviceProfile(device, ID, version, None, state, command, None, NOW)


async def test_a_page_brings_back_what_differs(storage: SqlStorage) -> None:
    await _fleet(storage)
    await storage.save_device_profiles([_row("A", ProfileState.INSTALLED, "c-a")])
    await storage.save_device_profiles([_row("C", ProfileState.MISSING, "c-c")])
    page = await storage.profile_work(WorkScope(), None, 2)
    assert list(page.devices) == ["A", "B"]
    assert [(w.device_id, w.version, w.row) for w in page.installs] == [("B", 1, None)]
    assert page.installs[0].identity_der is not None
    page = await storage.profile_work(WorkScope(), "B", 2)
    assert [(w.device_id, w.row is not None) for w in page.installs] == [("C", True)]
    assert (await storage.profile_work(WorkScope(), "C", 2)).devices == []

    await storage.set_assignments(ID, TargetKind.ALL, [""], assigned=False)
    page = await storage.profile_work(WorkScope(identifier=ID), None, 10)
    assert [r.device_id for r in page.removals] == ["A", "C"]
    assert page.installs == []


async def test_scheduling_leaves_a_settled_row_alone(storage: SqlStorage) -> None:
    await _fleet(storage)
    await storage.save_device_profiles([_row("A", ProfileState.PENDING, "queued-meanwhile")])
    rows = [_row(d, ProfileState.PENDING, None) for d in ("A", "B")]
    assert await storage.schedule_installs(rows) == 1
    states = {r.device_id: r.command_uuid for r in await storage.device_profiles()}
    assert states == {"A": "queued-meanwhile", "B": None}
    assert [s.row.device_id for s in await storage.scheduled_installs(10)] == ["B"]


async def test_a_scheduled_install_is_delivered_once(storage: SqlStorage) -> None:
    await _fleet(storage)
    await storage.schedule_installs([_row("B", ProfileState.PENDING, None)])
    assert len(await storage.scheduled_installs(10)) == 1
    first, second = (
        (_row("B", ProfileState.PENDING, uuid), NewCommand(uuid, "InstallProfile", b"<plist/>"))
        for uuid in ("first", "second")
    )
    assert [r.command_uuid for r in await storage.deliver_scheduled([first], NOW)] == ["first"]
    assert await storage.deliver_scheduled([second], NOW) == []  # another pass got there first
    assert await storage.scheduled_installs(10) == []
    assert [t.device_id for t in await storage.command_targets("first", NOW)] == ["B"]
    assert await storage.command_targets("second", NOW) == []


async def test_a_page_scheduled_by_the_database(storage: SqlStorage) -> None:
    await _fleet(storage)
    await storage.save_device_profiles([_row("A", ProfileState.INSTALLED, "c-a")])
    await storage.save_device_profiles([_row("C", ProfileState.MISSING, "c-c")])
    page = await storage.schedule_work(WorkScope(), None, 10, NOW)
    assert (list(page.devices), page.installs, page.scheduled) == (["A", "B", "C"], [], 2)
    scheduled = [(s.row.device_id, s.row.state) for s in await storage.scheduled_installs(10)]
    assert scheduled == [("B", ProfileState.PENDING), ("C", ProfileState.PENDING)]
    assert (await storage.schedule_work(WorkScope(), None, 10, NOW)).scheduled == 0
