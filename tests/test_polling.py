"""The polling loop of every background worker (orchardist.polling): a wake-up is never lost,
whether it comes while the loop waits, while it runs a round, or while another loop on the
same Wake runs and waits (as the tests run two processes' loops in one)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from orchardist.polling import Wake, poll_forever

pytestmark = pytest.mark.anyio
NEVER = 3600.0  # a poll that never comes within a test: only a wake-up starts a round
LIMIT = 20.0  # how long a test waits for a round before calling it lost


class Rounds:
    """A loop's drain: counts its rounds; each round can be held until released."""

    def __init__(self) -> None:
        self.done = 0
        self.started = asyncio.Event()
        self.hold = asyncio.Event()
        self.hold.set()
        self._counted = asyncio.Event()

    async def __call__(self) -> None:
        self.started.set()
        await self.hold.wait()
        self.done += 1
        self._counted.set()

    async def until(self, rounds: int) -> None:
        async with asyncio.timeout(LIMIT):
            while self.done < rounds:
                self._counted.clear()
                await self._counted.wait()


@contextlib.asynccontextmanager
async def looping(*drains: Rounds, wake: Wake) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(poll_forever(d, wake, NEVER, lambda _: None)) for d in drains]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_wake_up_during_a_round_starts_the_next_one() -> None:
    wake, rounds = Wake(), Rounds()
    rounds.hold.clear()
    async with looping(rounds, wake=wake):
        await rounds.started.wait()
        wake.set()  # while the first round runs: it may have looked too early
        rounds.hold.set()
        await rounds.until(2)
        await asyncio.sleep(0.05)
        assert rounds.done == 2  # and then waits: one wake-up, one more round


async def test_two_loops_on_one_wake_each_see_it() -> None:
    """One loop (the lease holder, say) is still in its round when the wake-up comes; the
    other is waiting, wakes, runs its round and waits again before the first is done. The
    first still starts another round: the other's wait did not take the wake-up from it."""
    wake, busy, idle = Wake(), Rounds(), Rounds()
    busy.hold.clear()
    async with looping(busy, idle, wake=wake):
        await busy.started.wait()
        await idle.until(1)
        wake.set()
        await idle.until(2)
        await asyncio.sleep(0.05)  # the idle loop back in its wait
        busy.hold.set()
        await busy.until(2)
        assert idle.done == 2
