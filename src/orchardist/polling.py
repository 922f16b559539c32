"""The loop every background worker runs (the pusher, the webhook sender): take what is
due, then sleep until woken or until the next poll. Imports nothing of the server's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


async def drain_all(run_once: Callable[[], Awaitable[int]]) -> int:
    """Call `run_once` until it claims nothing; how many it claimed in all."""
    total = 0
    while claimed := await run_once():
        total += claimed
    return total


class Wake:
    """What wakes a polling loop before its next poll: `set` wakes the loops waiting, and a
    loop that was busy with a round when it came starts its next round at once. Each loop
    keeps its own mark of the wake-ups it has seen (`count`), so two loops on one Wake never
    clear each other's wake-up, as a shared asyncio.Event cleared by one of them would."""

    def __init__(self) -> None:
        self.count = 0  # wake-ups so far
        self._changed = asyncio.Event()

    def set(self) -> None:
        self.count += 1
        self._changed.set()

    async def after(self, seen: int) -> None:
        """Return once there has been a wake-up since `count` was `seen`."""
        while self.count == seen:
            # Clearing leaves loops already waiting woken: set() resolved their waits.
            self._changed.clear()
            await self._changed.wait()


async def poll_forever(
    drain: Callable[[], Awaitable[object]],
    wake: Wake,
    poll_seconds: float,
    failed: Callable[[str], None],
) -> None:
    """Until cancelled: `drain`, then wait for `wake` or `poll_seconds`. A failing round is
    told to `failed` (its message) and the loop goes on: the worker outlives it."""
    while True:
        # Marked before the round, not after: a wake-up that comes while it runs (work it
        # may have looked for too early) starts the next round at once instead of being
        # lost until the next poll.
        seen = wake.count
        try:
            await drain()
        except Exception as exc:  # the worker must outlive any one failing round
            failed(str(exc) or type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await wake.after(seen)
