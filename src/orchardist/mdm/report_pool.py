"""Device reports read by the server: large ones in worker processes, small ones in process.

A report over `OFF_LOOP_BYTES` (an InstalledApplicationList or CertificateList of a
well-stocked device runs to megabytes) is read by `report_digest.digest` in a worker
process, so the server's own process spends almost nothing of its interpreter on it and
its event loop keeps answering Idles. A small report is read in process: the round trip
to a worker costs more than its parse.

Nothing is lost when a worker fails: a worker killed (BrokenProcessPool) or raising
anything but a refusal means the report is read in process, as before the pool existed,
and a dead pool is replaced for the next report. Refusals come back as the same
ReportError with the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess

import structlog

from orchardist import sched_slices
from orchardist.mdm.report_digest import Digest, digest
from orchardist.mdm.reports import OFF_LOOP_BYTES, Report, ReportError, read_report

log = structlog.get_logger("orchardist.mdm")

# The fork server imports these once and forks each worker from itself: a worker then
# starts in milliseconds. The server's __main__ (the default's one module) is among them,
# else every new worker would run the `orchardist` script again (multiprocessing's
# preparation of a child).
_PRELOAD = ["__main__", "orchardist.mdm.report_digest"]
_NICENESS = 19


class ReportPool:
    """`processes` worker processes, started at the first large report; 0 reads every
    report in process (on a thread when large)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.digested = 0  # reports a worker read
        self.read_in_process = 0  # large reports read in process because a worker failed
        self._executor: ProcessPoolExecutor | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False

    async def read(self, body: bytes) -> Report:
        """parse_report(body), with its refusals; a large body read by a worker."""
        if self.processes == 0 or len(body) < OFF_LOOP_BYTES or self._closed:
            return await read_report(body)
        found = await self.digest(body)
        if found is None:
            self.read_in_process += 1
            return await read_report(body)
        if isinstance(found, str):
            raise ReportError(found)
        return found.report(body)

    async def digest(self, body: bytes) -> Digest | str | None:
        """A worker's digest of the body, or the reason it refuses it; None when no worker
        could read it (the caller reads it in process)."""
        try:
            executor = await self._started()
        except Exception as exc:  # no process to be had (a limit, memory): read in process
            log.warning("report_worker_unavailable", error=repr(exc)[:200])
            return None
        try:
            found = await asyncio.get_running_loop().run_in_executor(executor, digest, body)
        except BrokenProcessPool:
            log.warning("report_worker_died", size=len(body), next="read in process")
            self._forget(executor)
            return None
        except Exception as exc:  # the in-process read gives what it would have given
            log.warning("report_worker_failed", size=len(body), error=repr(exc)[:200])
            return None
        self.digested += 1
        return found

    async def worker_pid(self) -> int:
        """The process id of a worker (one of them), starting the pool if need be."""
        executor = await self._started()
        return await asyncio.get_running_loop().run_in_executor(executor, os.getpid)

    async def close(self) -> None:
        """Stop the workers (waiting for reports they read); later reads are in process."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def _started(self) -> ProcessPoolExecutor:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._closed:
                raise RuntimeError("the report pool is closed")
            if self._executor is None:
                # On a thread: starting a process waits for the fork server, which imports
                # the reading code first (a few hundred milliseconds, once).
                self._executor = await asyncio.to_thread(_start, self.processes)
            return self._executor

    def _forget(self, executor: ProcessPoolExecutor) -> None:
        """Drop a broken pool (the next large report starts a new one), once."""
        if self._executor is executor:
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)


def _start(processes: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    executor = ProcessPoolExecutor(processes, mp_context=context, initializer=_worker_setup)
    # Every worker started now, not while a report waits (the pool starts them on demand).
    for future in [executor.submit(os.getpid) for _ in range(processes)]:
        future.result()
    return executor


def _worker_setup() -> None:
    # Ctrl-C reaches the whole process group; the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _yield_to_the_server()
    # A server killed (kill -9) never shuts its pool down, and a worker waiting for work
    # would wait forever (it holds both ends of its queue, and the fork server's "alive"
    # pipe, which keeps that waiting too): it ends when the server does.
    server = multiprocessing.parent_process()
    if server is not None:
        threading.Thread(target=_end_with, args=(server,), daemon=True).start()


def _yield_to_the_server() -> None:
    """When cores are short, the server's event loop (Idles waiting on it) goes first: a
    report's reading is throughput work, a check-in's answer is waited for.

    Nice 19 alone does not do it on Linux's scheduler (EEVDF): a task given a core keeps it
    for its slice whatever its nice value, and the server's woken event loop waited behind
    a worker for up to 3.5 ms (perf sched while bench reports ran). A SCHED_IDLE task gives
    the core up as soon as another wants it; it still runs whenever a core is free, and
    when none is (a server saturated with check-ins) large reports wait. Where the policy
    is missing or refused, nice 19 stands."""
    sched_slices.use_default_slice()  # not the event loop's short one (sched_slices.py)
    os.nice(_NICENESS)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))


def _end_with(server: BaseProcess) -> None:
    server.join()
    os._exit(0)
