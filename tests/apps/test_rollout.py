"""`serve`'s roll-out loop: of two processes on one database the one holding the roll-out's
lease runs it, it sends what an assignment marked without being asked, and the pace's
token bucket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchardist.apps.rollout import Pacer
from orchardist.jobs.leases import Leases
from tests.apps.factory import build_ipa
from tests.apps.test_library import BUNDLE, enrolled, library_of, upload
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio


def test_the_pace_refills_with_time() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    pacer = Pacer(4)
    assert pacer.available(start) == 4
    pacer.spend(4)
    assert pacer.available(start + timedelta(seconds=15)) == 1
    assert pacer.available(start) == 1  # time going back refills nothing
    assert pacer.available(start + timedelta(hours=1)) == 4  # never more than a minute's


async def test_the_loop_sends_what_an_assignment_marked(server: Server, tmp_path: Path) -> None:
    library = library_of(server)
    await enrolled(server, 1)
    await upload(server, build_ipa(tmp_path / "1.ipa"))
    processes = [Leases(server.services.storage, ttl=timedelta(minutes=1),
                        clock=lambda: datetime.now(UTC), holder=name) for name in "ab"]  # fmt: skip
    loops = [asyncio.create_task(library.run(leased(leases), tick_seconds=30))
             for leases in processes]  # fmt: skip
    try:
        await library.assign(BUNDLE, devices=["UDID-0"])  # wakes the loop: no 30 s wait
        # Under the 30 s tick, so only the wake-up can end it; 10 s once ran out on a loaded
        # machine in a full run.
        for _ in range(500):
            (row,) = await server.services.storage.device_apps(device_id="UDID-0")
            if row.command_uuid is not None:
                break
            await asyncio.sleep(0.05)
        commands = await server.services.storage.device_commands("UDID-0", datetime.now(UTC))
        assert [c.request_type for c in commands] == ["InstallApplication"]  # sent once
    finally:
        for loop in loops:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop


def leased(leases: Leases) -> Callable[[Callable[[], Awaitable[None]]], Awaitable[bool]]:
    """What `serve` hands the loop: its step under the roll-out's lease, kept between steps."""
    return lambda step: leases.run("apps.rollout", step, keep=True)
