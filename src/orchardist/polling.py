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


async def poll_forever(
    drain: Callable[[], Awaitable[object]],
    wake: asyncio.Event,
    poll_seconds: float,
    failed: Callable[[str], None],
) -> None:
    """Until cancelled: `drain`, then wait for `wake` or `poll_seconds`. A failing round is
    told to `failed` (its message) and the loop goes on: the worker outlives it."""
    while True:
        # Cleared before the round, not after: a wake-up that comes while it runs (work it
        # may have looked for too early) starts the next round at once instead of being
        # lost until the next poll.
        wake.clear()
        try:
            await drain()
        except Exception as exc:  # the worker must outlive any one failing round
            failed(str(exc) or type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await wake.wait()
