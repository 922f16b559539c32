"""Three `orchardist serve` processes on one database, a kill -9 among them: a seeded fleet
(tests/mdm/crash_fleet.py) spread over the three answers a command sent to all of them,
while a leased job — identity renewal, each device's identity due, so the pass queues one
re-delivery of the enrollment profile per device — runs in whichever process takes its
lease. That process is killed once its pass has queued some and not all; another takes
the lease over once it has expired and queues the rest; the dead one's devices go on with
the other two, as a load balancer would send them.

The test holds the renewal's lease (crash_leases) until the servers are up and the devices
on their way, so the pass starts while they are answering."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from orchardist.storage.sql.repositories import open_storage
from orchardist.storage.sql.tables import issued_certificates, scep_challenges
from tests.mdm import crash_leases
from tests.mdm.crash_fleet import Fleet, Member, Tally
from tests.mdm.crash_reconcile import _api, all_queued
from tests.mdm.crash_run import Stored, _server, database_url, prepare, send_to_all, stored
from tests.server import ServerProcess, free_port

RENEWAL = "identity.renewal"
RENEWAL_TYPE = "InstallProfile"
FAN_OUT = "SecurityInfo"
SERVERS = 3


@dataclass(frozen=True)
class SeveralRun:
    devices: int
    renewals_at_kill: Stored
    fan_out: Stored
    renewals: Stored
    challenges: int  # renewal challenges minted
    tally: Tally  # both sessions of every device
    holder: str | None  # the renewal lease at the end
    done: bool  # a renewal pass finished
    killed_pid: int


def several_run(
    data_dir: Path, env: Mapping[str, str], count: int, *, timeout: float = 120
) -> SeveralRun:
    token, members = prepare(data_dir, env, count)
    url, env = database_url(data_dir, env), {**env, **crash_leases.SHORT_LEASES}
    asyncio.run(_identities_due(url))
    asyncio.run(crash_leases.hold(url, RENEWAL))
    with ExitStack() as stack:
        servers = [stack.enter_context(_server(data_dir, env, free_port())) for _ in range(SERVERS)]
        bases = [base for base, _ in servers]
        with _api(bases[0], token) as api:
            send_to_all(FAN_OUT)(api)
        processes = {proc.server_pid: proc for _, proc in servers}
        first, killed, at_kill = asyncio.run(_first_session(url, bases, members, processes))
        live = [base for base, proc in servers if proc.server_pid != killed]
        asyncio.run(asyncio.wait_for(all_queued(url, RENEWAL_TYPE, count), timeout))
        second = Fleet(live, members)  # what was queued after a device's first session
        asyncio.run(asyncio.wait_for(second.run(), timeout))
    holder, done_at = asyncio.run(crash_leases.holder(url, RENEWAL))
    return SeveralRun(
        count, at_kill, asyncio.run(stored(url, FAN_OUT)), asyncio.run(stored(url, RENEWAL_TYPE)),
        asyncio.run(_renewal_challenges(url)), merged(first.tally, second.tally), holder,
        done_at is not None, killed,
    )  # fmt: skip


async def _first_session(
    url: str,
    bases: Sequence[str],
    members: Sequence[Member],
    processes: Mapping[int, ServerProcess],
) -> tuple[Fleet, int, Stored]:
    """The renewal let go, and the devices' first session on all three while it runs; its
    holder killed mid-pass: (the fleet, the killed pid, the renewals queued at the kill)."""
    await crash_leases.let_go(url, RENEWAL)
    while True:  # a server takes the lease within half a lease time
        held_by, _ = await crash_leases.holder(url, RENEWAL)
        if held_by and held_by != crash_leases.TEST_HOLDER:
            break
        await asyncio.sleep(0.01)
    doomed = processes[crash_leases.holder_pid(held_by)]
    # The devices set off as the pass does: they are still at it when it is killed.
    fleet = Fleet(bases, members)
    devices = asyncio.create_task(fleet.run())
    # Killed at the first renewal queued: the whole rest of the pass is the margin for a
    # busy machine to be slow between the count and the kill (at a tenth, the pass once
    # finished all 60 in between).
    while (await stored(url, RENEWAL_TYPE)).commands < 1:
        assert doomed.poll() is None, "the renewal's holder ended before it could be killed"
        assert not devices.done(), "the devices finished before the kill"
        await asyncio.sleep(0.005)
    doomed.send_signal(signal.SIGKILL)
    await asyncio.to_thread(doomed.wait, 10)
    at_kill = await stored(url, RENEWAL_TYPE)
    await asyncio.wait_for(devices, 120)
    return fleet, doomed.server_pid, at_kill


def merged(first: Tally, second: Tally) -> Tally:
    """What the devices saw over both sessions."""
    udids = first.received.keys() | second.received.keys()
    return Tally(
        received={u: first.received.get(u, []) + second.received.get(u, []) for u in udids},
        acknowledged={
            u: first.acknowledged.get(u, set()) | second.acknowledged.get(u, set()) for u in udids
        },
        answered=first.answered + second.answered,
        retried=first.retried + second.retried,
        refused=first.refused + second.refused,
        finished=second.finished,
    )


async def _identities_due(url: str) -> None:
    """Every seeded identity within its renewal window (30 days before expiry): issued 300
    days ago, expiring in 5."""
    now = datetime.now(UTC)
    change = update(issued_certificates).values(
        not_before=now - timedelta(days=300), not_after=now + timedelta(days=5)
    )
    await _write(url, change)


async def _renewal_challenges(url: str) -> int:
    query = (
        select(func.count())
        .select_from(scep_challenges)
        .where(scep_challenges.c.renewal_of.is_not(None))
    )
    storage = await open_storage(url)
    try:
        return int(await storage.database.read(lambda conn: conn.execute(query).scalar() or 0))
    finally:
        await storage.close()


async def _write(url: str, statement: Any) -> None:
    storage = await open_storage(url)
    try:
        await storage.database.write(lambda conn: conn.execute(statement))
    finally:
        await storage.close()
