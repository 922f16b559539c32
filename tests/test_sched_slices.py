"""Short scheduler slices (orchardist.sched_slices): a thread asks for the shortest one and
gets it where the kernel has per-task slices (Linux 6.12+), and the threads and processes
it starts, among them those that are to yield to the event loop, begin at the default.

Each case runs in a thread of its own, which ends with it: the test process's threads keep
their slices."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from orchardist import bulk_threads, sched_slices
from orchardist.mdm import report_pool

T = TypeVar("T")

LINUX = sys.platform == "linux" and platform.machine() in {"x86_64", "aarch64", "arm64"}


def _kernel() -> tuple[int, int]:
    found = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(found[1]), int(found[2])) if found else (0, 0)


PER_TASK_SLICES = LINUX and _kernel() >= (6, 12)


def in_a_thread(work: Callable[[], T]) -> T:
    """work() on a new thread, which ends after it; its result or its exception."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _not_below_nice_zero() -> None:
    """At a negative nice value the flag is not asked for (sched_slices.py): the calling
    thread (on Linux a thread has its own) goes to nice 0, which needs no privilege."""
    if LINUX and os.getpriority(os.PRIO_PROCESS, 0) < 0:
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def test_a_thread_gets_the_shortest_slice_and_can_give_it_back() -> None:
    def work() -> tuple[int | None, ...]:
        before = sched_slices.slice_of()
        short = sched_slices.use_short_slice()
        now = sched_slices.slice_of(threading.get_native_id())
        back = sched_slices.use_default_slice()
        return before, short, now, back

    before, short, now, back = in_a_thread(work)
    if PER_TASK_SLICES:
        assert short == now == sched_slices.SHORTEST
        assert back == before
        assert before is not None
        assert before > sched_slices.SHORTEST
    elif LINUX:  # an older kernel takes the request and reports no slice
        assert (before, short, now, back) == (0, 0, 0, 0)
    else:
        assert (before, short, now, back) == (None, None, None, None)


def test_only_the_calling_thread_changes() -> None:
    ours = sched_slices.slice_of()
    in_a_thread(sched_slices.use_short_slice)
    assert sched_slices.slice_of() == ours


def test_threads_and_processes_it_starts_begin_at_the_default_slice() -> None:
    """The loop's thread starts threads (the default executor's, uvloop's resolver's, a
    process pool's) and processes: none of them is to inherit its slice."""
    default = in_a_thread(sched_slices.slice_of)
    child = [sys.executable, "-c", "from orchardist import sched_slices as s; print(s.slice_of())"]

    def work() -> tuple[int | None, int | None, str]:
        _not_below_nice_zero()
        sched_slices.use_short_slice()
        started = in_a_thread(sched_slices.slice_of)
        ran = subprocess.run(child, capture_output=True, text=True, check=True).stdout
        return sched_slices.slice_of(), started, ran

    loops, thread, process = in_a_thread(work)
    assert thread == default
    assert process.strip() == str(default)
    if PER_TASK_SLICES:
        assert loops == sched_slices.SHORTEST != default


@pytest.mark.skipif(not LINUX, reason="sched_getattr is Linux's")
def test_the_slice_is_given_back_without_privilege() -> None:
    """Clearing SCHED_FLAG_RESET_ON_FORK takes CAP_SYS_NICE, which a server run as a
    plain user lacks: giving the slice back keeps the flag."""

    def work() -> tuple[int | None, int | None, int]:
        _not_below_nice_zero()
        before = sched_slices.slice_of()
        sched_slices.use_short_slice()
        back = sched_slices.use_default_slice()
        attr = sched_slices._get(0)
        assert attr is not None
        return before, back, attr.sched_flags & sched_slices._RESET_ON_FORK

    before, back, flag = in_a_thread(work)
    assert back == before
    assert flag == sched_slices._RESET_ON_FORK


@pytest.mark.skipif(not LINUX, reason="scheduling policies per thread are Linux's")
def test_a_thread_at_another_policy_is_left_as_it_is() -> None:
    def work() -> tuple[int | None, int | None, int]:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # this thread only
        return sched_slices.slice_of(), sched_slices.use_short_slice(), os.sched_getscheduler(0)

    before, asked, policy = in_a_thread(work)
    assert asked is None
    assert policy == os.SCHED_BATCH
    assert in_a_thread(sched_slices.slice_of) == before


def test_bulk_threads_started_by_the_loop_have_the_default_slice() -> None:
    default = in_a_thread(sched_slices.slice_of)

    def work() -> tuple[int | None, int | None]:
        sched_slices.use_short_slice()  # as the event loop's thread has it
        saved, bulk_threads._pool = bulk_threads._pool, None  # threads started from here
        try:
            theirs = asyncio.run(bulk_threads.run(sched_slices.slice_of))
        finally:
            started, bulk_threads._pool = bulk_threads._pool, saved
            if started is not None:
                started.shutdown()
        return sched_slices.slice_of(), theirs

    loops, theirs = in_a_thread(work)
    assert theirs == default
    if PER_TASK_SLICES:
        assert loops == sched_slices.SHORTEST != theirs


@pytest.mark.skipif(not LINUX, reason="SCHED_IDLE is Linux's")
def test_a_report_worker_started_from_the_loop_goes_idle_at_the_default_slice() -> None:
    def worker() -> tuple[int | None, int]:
        report_pool._yield_to_the_server()  # its set-up, on this thread alone
        return sched_slices.slice_of(), os.sched_getscheduler(0)

    def work() -> tuple[int | None, int]:
        sched_slices.use_short_slice()  # as the event loop's thread, which starts the pool
        return in_a_thread(worker)

    slice_now, policy = in_a_thread(work)
    assert policy == os.SCHED_IDLE
    assert slice_now == in_a_thread(sched_slices.slice_of)
    if PER_TASK_SLICES:
        assert slice_now != sched_slices.SHORTEST
