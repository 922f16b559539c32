"""`serve`'s roll-out loop: one process per data dir runs it (an flock), it sends what an
assignment marked without being asked, and the pace's token bucket."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchardist.apps.rollout import Pacer, SingleRunner
from tests.apps.factory import build_ipa
from tests.apps.test_library import BUNDLE, enrolled, library_of, upload
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio


def test_one_runner_per_lock(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "app-rollout.lock"
    first, second = SingleRunner(lock), SingleRunner(lock)
    assert (first.held(), second.held(), first.held()) == (True, False, True)
    first.release()
    assert second.held()
    second.release()


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
    lock = tmp_path / "locks" / "app-rollout.lock"
    loops = [asyncio.create_task(library.run(lock, tick_seconds=30)) for _ in range(2)]
    try:
        await library.assign(BUNDLE, devices=["UDID-0"])  # wakes the loop: no 30 s wait
        for _ in range(200):
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
