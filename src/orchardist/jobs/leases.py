"""Background passes under named leases: of several processes on one database (`serve
--workers N`, several hosts on one PostgreSQL) exactly one runs a job's pass at a time, and
a periodic pass runs once per period for the server as a whole, not once per process.

A lease (storage/leases.py) names its holder and when it expires. The holder renews it
while its pass runs (every third of the lease) and releases it at the end, recording when
the pass finished; a holder that dies (kill -9, a lost host) renews nothing, and once the
lease has expired another process takes it over and runs the pass again. So a pass must
be safe to run again after being cut anywhere: each one here commits its work row by row
(a command with its rows in one transaction, a compare-and-set, a deterministic command
UUID), and what the dead holder committed the next one skips. A holder that finds its
lease taken (it stalled past the expiry) stops its pass at its next renewal; until then
two passes may overlap, and the same row-by-row safety keeps the overlap from repeating
any work. A stall longer than the lease is what makes that happen: on SQLite a process
waits for another's write lock on its event loop (up to the busy timeout, 5 s), so leases
much shorter than the default 60 s suit only tests.

Clocks: expiry is compared with each process's own clock, so hosts sharing a database
keep their clocks in step (NTP); a skew shortens or lengthens a lease by as much.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from orchardist.storage.leases import LeaseStore

log = structlog.get_logger("orchardist.jobs")
Work = Callable[[], Awaitable[object]]


def holder_id() -> str:
    """This process, as lease holders are named: host, pid, and a random part (a pid is
    used again after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    def __init__(
        self,
        store: LeaseStore,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime],
        holder: str | None = None,
    ) -> None:
        self.store, self.ttl, self.clock = store, ttl, clock
        self.holder = holder or holder_id()

    async def run(
        self, name: str, work: Work, *, every: timedelta | None = None, keep: bool = False
    ) -> bool:
        """`work` under the lease `name`, if this process can take it and (with `every`)
        no pass finished within `every`; whether it ran. The lease is renewed while `work`
        runs and released when it ends, finished (also when it raised: the next try waits
        for the next period, as a failed pass always did) or not (cancelled: another process
        may take it at once). With `keep`, the lease stays held for `ttl` after a finished
        pass: the caller runs the next within that time and stays the one that runs them
        (a job with state of its own, such as the roll-out's pace)."""
        now = self.clock()
        done_before = now - every if every is not None else now
        lease = await self.store.take_lease(
            name, self.holder, now, now + self.ttl, done_before=done_before
        )
        if lease is None:
            return False
        task = asyncio.ensure_future(work())
        keeper = asyncio.create_task(self._keep(name, task))
        finished = False
        try:
            await task
            finished = True
        except asyncio.CancelledError:
            if not keeper.done() or keeper.result() is not False:
                raise  # cancelled from outside (shutdown); not a lost lease
            return False
        except Exception:
            finished = True
            raise
        finally:
            keeper.cancel()
            if not (keep and finished):
                await self._release(name, done=finished)
        return True

    async def periodic(self, name: str, every: timedelta, work: Work) -> None:
        """Until cancelled: `work` once per `every` for the whole server. Each process asks
        twice a lease time (or every `every`, if shorter), so a pass whose holder died is
        run again soon after its lease expired. A failing pass is logged."""
        check = min(every, self.ttl / 2).total_seconds()
        while True:
            try:
                await self.run(name, work, every=every)
            except Exception as exc:  # the loop must outlive one failing pass
                log.error("leased_pass_failed", job=name, error=str(exc) or type(exc).__name__)
            await asyncio.sleep(check)

    async def _keep(self, name: str, task: asyncio.Future[object]) -> bool:
        """Renew the lease every third of its time while `task` runs; False (and `task`
        cancelled) once it is another's."""
        while True:
            await asyncio.sleep(self.ttl.total_seconds() / 3)
            try:
                renewed = await self.store.renew_lease(name, self.holder, self.clock() + self.ttl)
            except Exception as exc:  # the database hiccuped: try again at the next third
                log.warning("lease_renewal_failed", job=name, error=str(exc) or type(exc).__name__)
                continue
            if not renewed:
                log.warning("lease_lost", job=name, holder=self.holder)
                task.cancel()
                return False

    async def _release(self, name: str, *, done: bool) -> None:
        # Shielded: a shutdown cancelling the pass still frees the lease for the others.
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self.store.release_lease(name, self.holder, self.clock(), done=done)
            )
