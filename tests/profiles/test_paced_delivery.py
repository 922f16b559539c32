"""Profiles at scale, on every backend: a reconciliation reads a page of devices at a time,
a change too large to sign in the request is scheduled and delivered at the configured
pace by the one process holding the lease "profiles.delivery" (two processes' libraries
on one database here), each device getting one InstallProfile; a group change looks at
that group's members only.

The devices are seeded straight into the database, sharing one identity certificate
(tests/profiles/fleet.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from orchardist.jobs.leases import Leases
from orchardist.profiles.library import LibraryStore, ProfileLibrary
from orchardist.profiles.spec import build_profile
from orchardist.storage.profile_work import WorkPage, WorkScope
from orchardist.storage.sql.repositories import SqlStorage, open_storage
from orchardist.storage.sql.tables import command_targets, commands
from tests.db import fresh_database
from tests.profiles.fleet import seed_enrolled, signer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FLEET = 2000
PAGE = 300
PER_MINUTE = 600  # so 60 are queued in the request, and 600 a minute after


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Watched:
    """The store, recording the devices of every page a pass reads."""

    def __init__(self, store: SqlStorage) -> None:
        self._store = store
        self.pages: list[Sequence[str]] = []
        self.rows: list[int] = []  # rows each page read brought back

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def profile_work(self, scope: WorkScope, after: str | None, limit: int) -> WorkPage:
        page = await self._store.profile_work(scope, after, limit)
        self.pages.append(page.devices)
        self.rows.append(len(page.devices) + len(page.installs) + len(page.removals))
        return page


def _udid(n: int) -> str:
    return f"PACED-{n:05}"


async def _seed(storage: SqlStorage, count: int) -> None:
    await seed_enrolled(storage, [_udid(n) for n in range(count)], START)


def _library(store: SqlStorage | Watched, clock: Clock) -> ProfileLibrary:
    return ProfileLibrary(cast(LibraryStore, store), signer(START, 1024), clock=clock,
                          delivery_per_minute=PER_MINUTE, page_size=PAGE)  # fmt: skip


def _profile(ssid: str) -> dict[str, object]:
    spec = {"identifier": "com.example.wifi", "name": "Wi-Fi",
            "payloads": [{"type": "wifi", "SSID_STR": ssid, "EncryptionType": "None"}]}  # fmt: skip
    return build_profile(spec, base_dir=Path("."), env={})


async def _installs(storage: SqlStorage) -> tuple[int, int]:
    """InstallProfile (commands, distinct devices targeted)."""
    t = command_targets.c
    query = (
        select(func.count(), func.count(t.device_id.distinct()))
        .select_from(command_targets.join(commands, commands.c.command_uuid == t.command_uuid))
        .where(commands.c.request_type == "InstallProfile")
    )
    row = await storage.database.read(lambda conn: conn.execute(query).one())
    return int(row[0]), int(row[1])


async def test_a_version_for_the_fleet_is_paged_scheduled_and_paced(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path) as url:
        storage, other_storage = await open_storage(url), await open_storage(url)
        try:
            await _paced(storage, other_storage)
        finally:
            await storage.close()
            await other_storage.close()


async def _paced(storage: SqlStorage, other_storage: SqlStorage) -> None:
    """The second storage: another process on the same database."""
    await _seed(storage, FLEET)
    clock = Clock()
    watched = Watched(storage)
    library = _library(watched, clock)
    await library.add(_profile("Office"))
    done = await library.assign("com.example.wifi", everyone=True)
    # Read a page at a time; the first tenth of a minute's pace queued in the request.
    assert max(len(page) for page in watched.pages) == PAGE
    assert max(watched.rows) <= 2 * PAGE  # a page's devices and what one profile lacks
    assert (done.installs, done.scheduled, done.skipped) == (FLEET, FLEET - 60, [])
    assert await _installs(storage) == (60, 60)

    # Each process with its own library and leases; one holds the lease and keeps it.
    other = _library(other_storage, clock)
    leases = [Leases(s, ttl=timedelta(seconds=60), clock=clock, holder=h)
              for s, h in ((storage, "one"), (other_storage, "two"))]  # fmt: skip
    expected = 60
    while expected < FLEET:
        ran = [await lease.run("profiles.delivery", lib.delivery.run_pass, keep=True)
               for lease, lib in zip(leases, (library, other), strict=True)]  # fmt: skip
        assert ran == [True, False]
        expected = min(FLEET, expected + PER_MINUTE)  # a minute's pace
        assert await _installs(storage) == (expected, expected)  # one per device
        clock.now += timedelta(minutes=1)
    assert await storage.scheduled_installs(10) == []
    # Nothing to do: a full pass reads page by page and queues nothing.
    watched.pages.clear()
    again = await library.reconcile()
    assert (again.installs, again.removals) == (0, 0)
    assert len(watched.pages) == FLEET // PAGE + 2  # the last one empty
    assert await _installs(storage) == (FLEET, FLEET)


async def test_a_group_change_looks_at_its_members_only(storage: SqlStorage) -> None:
    await _seed(storage, 50)
    clock = Clock()
    watched = Watched(storage)
    library = _library(watched, clock)
    await library.add(_profile("Office"))
    await library.set_group("sales", [_udid(n) for n in range(10)])
    await library.set_group("other", [_udid(n) for n in range(20, 30)])
    done = await library.assign("com.example.wifi", groups=["sales"])
    assert (done.installs, done.scheduled) == (10, 0)

    watched.pages.clear()
    members = [_udid(n) for n in range(5, 15)]  # 0-4 leave, 10-14 join
    done = await library.set_group("sales", members)
    assert (done.installs, done.removals) == (5, 5)
    looked_at = {device for page in watched.pages for device in page}
    assert looked_at == {_udid(n) for n in range(15)}  # members, and those who held it

    watched.pages.clear()
    done = await library.set_group("other", [_udid(n) for n in range(20, 40)])
    assert (done.installs, done.removals) == (0, 0)  # nothing assigned to it
    assert {device for page in watched.pages for device in page} <= {
        _udid(n) for n in range(20, 40)
    }
