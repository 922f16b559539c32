"""Background passes under named leases (orchardist.jobs.leases), two "processes" (two
Leases with holders of their own) on one database, on every backend: one runs a pass at a
time, a periodic pass once per period, a dead holder's pass is taken over once its lease
expired, a holder that lost its lease stops, a cancelled pass frees it at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.jobs.leases import Leases, holder_id
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
TTL = timedelta(seconds=0.3)  # renewed every 0.1 s of real time
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def endless(started: asyncio.Event) -> Callable[[], Awaitable[None]]:
    """A pass that says it started and never ends."""

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    return work


def two(storage: SqlStorage, clock: Clock) -> tuple[Leases, Leases]:
    return (Leases(storage, ttl=TTL, clock=clock, holder="a"),
            Leases(storage, ttl=TTL, clock=clock, holder="b"))  # fmt: skip


async def test_one_process_runs_a_pass_while_the_other_skips_it(storage: SqlStorage) -> None:
    clock = Clock()
    a, b = two(storage, clock)
    started, finish, runs = asyncio.Event(), asyncio.Event(), []

    async def work() -> None:
        runs.append(1)
        started.set()
        await finish.wait()

    first = asyncio.create_task(a.run("job", work))
    await started.wait()
    await asyncio.sleep(0.5)  # longer than the lease: renewed meanwhile
    clock.now += TTL / 2
    assert not await b.run("job", work)
    finish.set()
    assert await first
    assert await b.run("job", lambda: asyncio.sleep(0))  # released: free
    assert runs == [1]


async def test_a_periodic_pass_runs_once_per_period_for_both(storage: SqlStorage) -> None:
    clock = Clock()
    a, b = two(storage, clock)
    runs: list[str] = []

    async def work() -> None:
        runs.append("ran")

    assert await a.run("job", work, every=HOUR)
    clock.now += HOUR / 2
    assert not await b.run("job", work, every=HOUR)
    assert not await a.run("job", work, every=HOUR)
    clock.now += HOUR / 2
    assert await b.run("job", work, every=HOUR)
    assert runs == ["ran", "ran"]


async def test_a_dead_holders_pass_is_taken_over_once_its_lease_expired(
    storage: SqlStorage,
) -> None:
    clock = Clock()
    a, b = two(storage, clock)
    # a took the lease and died (kill -9): nothing renews or releases it.
    assert await storage.take_lease("job", a.holder, clock.now, clock.now + TTL,
                                    done_before=clock.now)  # fmt: skip
    done: list[str] = []

    async def work() -> None:
        done.append("b")

    assert not await b.run("job", work, every=HOUR)
    clock.now += TTL
    assert await b.run("job", work, every=HOUR)  # never finished: due whatever the period
    assert done == ["b"]


async def test_a_holder_that_lost_its_lease_stops(storage: SqlStorage) -> None:
    clock = Clock()
    a, b = two(storage, clock)
    started = asyncio.Event()
    stalled = asyncio.create_task(a.run("job", endless(started)))
    await started.wait()
    clock.now += HOUR  # a stalled past its lease, and b took the job over
    assert await storage.take_lease("job", b.holder, clock.now, clock.now + HOUR,
                                    done_before=clock.now)  # fmt: skip
    assert await asyncio.wait_for(stalled, 5) is False  # cancelled at its next renewal


async def test_a_cancelled_pass_frees_the_lease_at_once(storage: SqlStorage) -> None:
    clock = Clock()
    a, b = two(storage, clock)
    started = asyncio.Event()
    running = asyncio.create_task(a.run("job", endless(started), every=HOUR))
    await started.wait()
    running.cancel()  # a shuts down
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await b.run("job", lambda: asyncio.sleep(0), every=HOUR)  # not done: due


async def test_a_kept_lease_stays_with_its_holder_between_passes(storage: SqlStorage) -> None:
    clock = Clock()
    a, b = two(storage, clock)
    assert await a.run("rollout", lambda: asyncio.sleep(0), keep=True)
    assert not await b.run("rollout", lambda: asyncio.sleep(0), keep=True)
    assert await a.run("rollout", lambda: asyncio.sleep(0), keep=True)
    clock.now += TTL  # a stopped asking (it died): b takes over
    assert await b.run("rollout", lambda: asyncio.sleep(0), keep=True)


def test_holders_are_told_apart_even_in_one_process() -> None:
    assert holder_id() != holder_id()
