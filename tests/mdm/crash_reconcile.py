"""A kill -9 during the work a server does before any device answers: the reconciliation
pass that an assignment to all starts, queueing one InstallProfile per device. The server
is killed once the database holds some of them and not all; a new server on the same port
finishes the pass by itself (its reconciliation at start), with nothing asked of it; then
the whole fleet checks in."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

from orchardist.storage.sql.repositories import open_storage
from tests.mdm.crash_fleet import Fleet, Tally
from tests.mdm.crash_run import Stored, _server, database_url, prepare, profile_states, stored
from tests.server import free_port

Start = Callable[[httpx.Client], None]  # the request whose work is killed mid-way


@dataclass(frozen=True)
class KilledPass:
    devices: int
    at_kill: Stored  # the dead server's commands of the request type
    states_at_kill: dict[str, int]  # and its device states (profile_states or app_states)
    after: Stored
    tally: Tally
    states: dict[str, int]


def killed_pass(
    data_dir: Path,
    env: Mapping[str, str],
    count: int,
    request_type: str,
    setup: Start,
    start: Start,
    states_of: Callable[[str], dict[str, int]] | None = None,
    *,
    kill_at: int | None = None,
    timeout: float = 300,
) -> KilledPass:
    """`setup` (uploads) then `start` (the request that queues `request_type` for every
    device) on a server killed once `kill_at` commands (a fifth of the fleet) are in its
    database; then the next server, left alone until every device has one, and the fleet
    through it. The request may have been answered before the kill: past a size, the pass
    goes on after the answer, paced (profiles/delivery.py). The kill is mid-way when the
    database held some of the commands and not all, which is checked here."""
    token, members = prepare(data_dir, env, count)
    url, port = database_url(data_dir, env), free_port()
    states = states_of or (lambda u: asyncio.run(profile_states(u)))
    with _server(data_dir, env, port) as (base, doomed), _api(base, token) as api:
        setup(api)
        cut, failed = _start_in_thread(api, start)
        asyncio.run(_kill_when_queued(url, request_type, kill_at or count // 5, doomed))
        cut.join(30)
        assert not cut.is_alive()
        assert not failed, failed
    at_kill = asyncio.run(stored(url, request_type))
    assert at_kill.targets < count, "every command was queued before the kill"
    states_at_kill = states(url)
    with _server(data_dir, env, port) as (base, _):
        # No request: the new server's pass at start queues the rest.
        asyncio.run(asyncio.wait_for(all_queued(url, request_type, count), timeout))
        fleet = Fleet(base, members)
        asyncio.run(asyncio.wait_for(fleet.run(), timeout))
    after = asyncio.run(stored(url, request_type))
    return KilledPass(count, at_kill, states_at_kill, after, fleet.tally, states(url))


async def all_queued(url: str, request_type: str, targets: int) -> None:
    """Until the database holds `targets` (command, device) rows of `request_type`."""
    while True:
        if (await stored(url, request_type)).targets >= targets:
            return
        await asyncio.sleep(0.2)  # another process (the server) writes them


def _api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600)


def _start_in_thread(
    api: httpx.Client, start: Start
) -> tuple[threading.Thread, list[BaseException]]:
    """`start` on a thread; its answer, or its connection breaking when the server dies,
    are expected; any other end of it is in the list."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            start(api)
        except httpx.TransportError:
            return
        except BaseException as exc:  # reported by the caller
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, failed


async def _kill_when_queued(
    url: str, request_type: str, at_least: int, doomed: subprocess.Popen[bytes]
) -> None:
    query = text("SELECT count(*) FROM commands WHERE request_type = :request_type")
    storage = await open_storage(url)
    try:
        while True:
            queued = await storage.database.read(
                lambda conn: conn.execute(query, {"request_type": request_type}).scalar()
            )
            if int(queued or 0) >= at_least:
                break
            assert doomed.poll() is None, "the server ended before it could be killed"
            await asyncio.sleep(0.01)
    finally:
        await storage.close()
    doomed.send_signal(signal.SIGKILL)
    await asyncio.to_thread(doomed.wait, 10)
