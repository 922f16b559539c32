"""Threads for bulk work beside the event loop, at a lower scheduling priority than the
loop's own thread: hashing a megabyte report for its Mdm-Signature, writing it to SQLite.

That work releases the interpreter lock (hashlib, sqlite3), so it runs on another core
while the loop answers Idles; but when the cores are short it competes with the loop's
thread for them, and the kernel lets a running thread finish its slice (a millisecond or
more) before a woken one runs. On a 2-core host, while large reports flowed, an Idle's
own 0.4 ms of CPU took up to 4 ms from start to answer, waiting at each point where the
loop's thread had let go of the core (bench reports). Here such threads yield first.

On Linux a thread has its own nice value (setpriority on its thread id); elsewhere a
thread id is no process id, and these threads run at the process's priority.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from orchardist import sched_slices

P = ParamSpec("P")
T = TypeVar("T")

NICENESS = 10  # added to the process's: the loop's thread then weighs 9 times as much
THREADS = 2

_pool: ThreadPoolExecutor | None = None
_creating = threading.Lock()


async def run(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args, **kwargs)` on a bulk thread, as asyncio.to_thread runs it (the caller's
    context variables, such as the log's bound fields, go with it)."""
    call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _creating:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    THREADS, thread_name_prefix="orchardist-bulk", initializer=_yield_first
                )
    return _pool


def _yield_first() -> None:
    if sys.platform != "linux":
        return
    sched_slices.use_default_slice()  # where it inherited the loop's short one (sched_slices.py)
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + NICENESS))
    except OSError:  # a sandbox that forbids it: the work runs all the same
        return
