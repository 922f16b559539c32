"""A test holding a job's lease (orchardist.jobs.leases) as another `serve` process would:
the servers it starts leave the job alone until the test lets go, so the job's pass starts
once the servers are up and watched. And which process holds a lease, to kill it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from orchardist.storage.sql.repositories import open_storage
from orchardist.storage.sql.tables import leases

TEST_HOLDER = "the test"
# Servers in these tests hand a dead process's job to another after this (a setting). Not
# shorter: on SQLite a process may wait seconds for another's write lock, renewing nothing.
SHORT_LEASES = {"ORCHARDIST_JOB_LEASE_SECONDS": "5"}


async def hold(url: str, name: str) -> None:
    now = datetime.now(UTC)
    storage = await open_storage(url)
    try:
        until = now + timedelta(hours=1)
        assert await storage.take_lease(name, TEST_HOLDER, now, until, done_before=now)
    finally:
        await storage.close()


async def let_go(url: str, name: str) -> None:
    """Release it, the job not done: a server takes it at its next try."""
    storage = await open_storage(url)
    try:
        await storage.release_lease(name, TEST_HOLDER, datetime.now(UTC), done=False)
    finally:
        await storage.close()


async def holder(url: str, name: str) -> tuple[str | None, datetime | None]:
    """(who holds the lease, when a pass under it last finished)."""
    storage = await open_storage(url)
    query = select(leases.c.holder, leases.c.done_at).where(leases.c.name == name)
    try:
        row = await storage.database.read(lambda conn: conn.execute(query).first())
    finally:
        await storage.close()
    return (None, None) if row is None else (row.holder, row.done_at)


def holder_pid(held_by: str) -> int:
    """The pid in a holder's name (host:pid:random, jobs.leases.holder_id)."""
    return int(held_by.split(":")[-2])
