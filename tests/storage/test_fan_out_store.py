"""Queueing for every enrolled device and for a static group in the database
(`enqueue_to`, INSERT … SELECT), on every backend: each enrolled device in scope gets
exactly one command row and one push job, every other device none."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orchardist.storage import NewCommand
from orchardist.storage.scopes import AllEnrolled, Devices, InGroup
from orchardist.storage.sql.database import AsyncDatabase
from orchardist.storage.sql.repositories import SqlStorage
from orchardist.storage.sql.tables import (
    command_targets,
    commands,
    device_groups,
    enrollments,
    push_jobs,
)

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FLEET = 3000  # enough for several of the explicit path's 2,000-row batches


def _udid(n: int) -> str:
    return f"FAN-{n:05}"


def _enrolled(n: int) -> bool:
    return n % 3 != 0  # a third authenticated, checked out or retired: never targeted


async def _seed(storage: SqlStorage, group_every: int = 2) -> None:
    """FLEET devices, written in bulk; even-numbered ones in group "even"."""
    rows = [
        {"device_id": _udid(n), "topic": "com.apple.mgmt.test", "identity_sha256": "a" * 64,
         "enrolled": _enrolled(n), "token": b"\x01" * 32, "push_magic": "M",
         "authenticated_at": NOW - timedelta(days=1)}
        for n in range(FLEET)
    ]  # fmt: skip
    members = [{"name": "even", "device_id": _udid(n)} for n in range(0, FLEET, group_every)]

    def work(conn: Connection) -> None:
        conn.execute(insert(enrollments), rows)
        conn.execute(insert(device_groups), members)

    await storage.database.write(work)


def _command(uuid: str, request_type: str = "DeviceInformation") -> NewCommand:
    return NewCommand(uuid, request_type, b"<plist>secret body</plist>", 3, NOW + timedelta(days=1))


async def _targets(storage: SqlStorage, uuid: str) -> list[Any]:
    query = select(command_targets).where(command_targets.c.command_uuid == uuid)
    return await storage.database.read(lambda conn: conn.execute(query).all())


async def _jobs(storage: SqlStorage) -> dict[str, Any]:
    rows = await storage.database.read(lambda conn: conn.execute(select(push_jobs)).all())
    return {row.device_id: row for row in rows}


async def test_all_enrolled(storage: SqlStorage) -> None:
    await _seed(storage)
    wanted = {_udid(n) for n in range(FLEET) if _enrolled(n)}
    assert await storage.enqueue_to(_command("ALL"), AllEnrolled(), NOW) == len(wanted)
    rows = await _targets(storage, "ALL")
    assert sorted(row.device_id for row in rows) == sorted(wanted)  # each once
    assert {(r.status, r.priority, r.created_at, r.expires_at) for r in rows} == {
        ("queued", 3, NOW, NOW + timedelta(days=1))
    }
    jobs = await _jobs(storage)
    assert set(jobs) == wanted
    assert {(j.due_at, j.attempts, j.forced, j.claim) for j in jobs.values()} == {
        (NOW, 0, False, None)
    }
    # What a device is offered is the command as queued.
    offered = (await storage.exchange(_udid(1), None, NOW)).next_command
    assert offered == ("ALL", b"<plist>secret body</plist>")


async def test_group_members_that_are_enrolled(storage: SqlStorage) -> None:
    await _seed(storage)
    wanted = {_udid(n) for n in range(0, FLEET, 2) if _enrolled(n)}
    assert await storage.enqueue_to(_command("EVEN"), InGroup("even"), NOW) == len(wanted)
    assert sorted(row.device_id for row in await _targets(storage, "EVEN")) == sorted(wanted)
    assert set(await _jobs(storage)) == wanted


async def test_an_unknown_group_queues_nothing(storage: SqlStorage) -> None:
    await _seed(storage)
    with pytest.raises(LookupError, match="no group 'odd'"):
        await storage.enqueue_to(_command("ODD"), InGroup("odd"), NOW)
    count = select(func.count()).select_from(commands)
    assert await storage.database.read(lambda conn: conn.execute(count).scalar_one()) == 0
    assert await _jobs(storage) == {}


async def test_a_group_of_none_enrolled_stores_the_command(storage: SqlStorage) -> None:
    await _seed(storage, group_every=3)  # 0, 3, 6…: the ones not enrolled
    assert await storage.enqueue_to(_command("NONE"), InGroup("even"), NOW) == 0
    assert await storage.command_counts("NONE", NOW) == dict.fromkeys(
        ("queued", "pushed", "sent", "acknowledged", "error", "not_now", "expired", "cancelled"),
        0,
    )
    assert await _jobs(storage) == {}


async def test_push_jobs_are_coalesced_and_released(storage: SqlStorage) -> None:
    await _seed(storage)
    await storage.enqueue_to(_command("FIRST"), AllEnrolled(), NOW)
    claimed = (
        update(push_jobs)
        .where(push_jobs.c.device_id < _udid(FLEET // 2))
        .values(claim="c" * 32, claimed_until=NOW + timedelta(minutes=1))
    )
    backing_off = (
        update(push_jobs)
        .where(push_jobs.c.device_id >= _udid(FLEET // 2))
        .values(due_at=NOW + timedelta(minutes=30), attempts=2)
    )
    await storage.database.write(lambda conn: (conn.execute(claimed), conn.execute(backing_off)))
    later = NOW + timedelta(seconds=5)
    await storage.enqueue_to(_command("SECOND"), AllEnrolled(), later)
    jobs = await _jobs(storage)
    assert len(jobs) == len([n for n in range(FLEET) if _enrolled(n)])
    # The push in flight may have gone out before SECOND was queued, and one backing off
    # would wait half an hour: both due now, unclaimed, their count of pushes restarted.
    assert {(j.due_at, j.attempts, j.claim, j.claimed_until) for j in jobs.values()} == {
        (later, 0, None, None)
    }
    # A job already due and unclaimed stays as it is: it goes out first.
    await storage.enqueue_to(_command("THIRD"), AllEnrolled(), later + timedelta(seconds=5))
    assert {j.due_at for j in (await _jobs(storage)).values()} == {later}


async def test_a_secret_command_is_sealed(storage: SqlStorage) -> None:
    await _seed(storage)
    await storage.enqueue_to(_command("ERASE", "EraseDevice"), AllEnrolled(), NOW)
    query = select(commands.c.body, commands.c.body_key)
    body, key = await storage.database.read(lambda conn: conn.execute(query).one())
    assert key is not None
    assert b"secret" not in body
    offered = (await storage.exchange(_udid(2), None, NOW)).next_command
    assert offered == ("ERASE", b"<plist>secret body</plist>")


async def test_a_long_explicit_list(storage: SqlStorage) -> None:
    """Named devices go in batches, whatever their number, enrolled or not."""
    await _seed(storage)
    named = [_udid(n) for n in range(FLEET)]
    assert await storage.enqueue_to(_command("LIST"), Devices([*named, named[0]]), NOW) == FLEET
    assert len(await _targets(storage, "LIST")) == FLEET
    assert len(await _jobs(storage)) == FLEET


async def test_jobs_are_added_where_missing_and_made_due_where_not_waiting(
    storage: SqlStorage,
) -> None:
    """A fan-out over devices some of which have a job: the others get one; of the jobs
    there, the waiting one is kept (forced stays), the claimed and backing-off ones are
    made due."""
    await _seed(storage)
    await storage.enqueue_to(_command("EVEN"), InGroup("even"), NOW)
    kept, claimed, backing_off = _udid(2), _udid(4), _udid(8)
    changes = (
        update(push_jobs).where(push_jobs.c.device_id == kept).values(forced=True),
        update(push_jobs)
        .where(push_jobs.c.device_id == claimed)
        .values(claim="c" * 32, claimed_until=NOW + timedelta(minutes=1)),
        update(push_jobs)
        .where(push_jobs.c.device_id == backing_off)
        .values(due_at=NOW + timedelta(minutes=30), attempts=2),
    )
    await storage.database.write(lambda conn: [conn.execute(change) for change in changes])
    later = NOW + timedelta(seconds=5)
    await storage.enqueue_to(_command("ALL"), AllEnrolled(), later)
    jobs = await _jobs(storage)
    assert set(jobs) == {_udid(n) for n in range(FLEET) if _enrolled(n)}
    state = {d: (j.due_at, j.attempts, j.forced, j.claim) for d, j in jobs.items()}
    assert state[kept] == (NOW, 0, True, None)
    assert state[claimed] == state[backing_off] == (later, 0, False, None)
    waiting = {d for d in jobs if int(d[4:]) % 2 == 0} - {claimed, backing_off}
    assert {state[d] for d in waiting - {kept}} == {(NOW, 0, False, None)}
    assert {state[d] for d in set(jobs) - waiting - {claimed, backing_off}} == {
        (later, 0, False, None)
    }


async def test_a_job_another_transaction_adds_meanwhile(storage: SqlStorage, backend: str) -> None:
    """Another writer adds a job (a backing-off one, say) for one of the targets. On
    PostgreSQL it does so while the fan-out's INSERT runs: the INSERT waits on that row,
    fails at the unique key once it commits, and the fan-out redoes the jobs as an upsert in
    its place. SQLite lets no writer in meanwhile: there the job is added before."""
    await _seed(storage)
    target = _udid(1)
    job = {"device_id": target, "due_at": NOW - timedelta(hours=1), "attempts": 3,
           "forced": False}  # fmt: skip
    if backend == "sqlite":
        await storage.database.write(lambda conn: conn.execute(insert(push_jobs), job))
        queued = await storage.enqueue_to(_command("ALL"), AllEnrolled(), NOW)
    else:
        queued = await _fan_out_while_a_job_is_added(storage, job)
    wanted = {_udid(n) for n in range(FLEET) if _enrolled(n)}
    assert queued == len(wanted)
    jobs = await _jobs(storage)
    assert set(jobs) == wanted
    assert {(j.due_at, j.attempts, j.claim) for j in jobs.values()} == {(NOW, 0, None)}


async def _fan_out_while_a_job_is_added(storage: SqlStorage, job: dict[str, Any]) -> int:
    database = storage.database
    assert isinstance(database, AsyncDatabase)
    engine = create_async_engine(database.engine.url)  # apart from the storage's pool
    try:
        return await _fan_out_beside(storage, engine, job)
    finally:
        await engine.dispose()


async def _fan_out_beside(storage: SqlStorage, engine: AsyncEngine, job: dict[str, Any]) -> int:
    async with engine.connect() as other, engine.connect() as watcher:
        await other.begin()
        await other.execute(insert(push_jobs), job)
        xid = (await other.execute(text("SELECT pg_current_xact_id()::text"))).scalar_one()
        fan_out = asyncio.create_task(storage.enqueue_to(_command("ALL"), AllEnrolled(), NOW))
        waits = text(  # a backend waits for the other transaction to end
            "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid'"
            " AND NOT granted AND transactionid::text = :xid"
        )
        for _ in range(500):
            if (await watcher.execute(waits, {"xid": xid})).scalar_one():
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the fan-out never waited on the other's job")
        await other.commit()
        return await fan_out
