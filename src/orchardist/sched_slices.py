"""Short scheduler slices for the event loop's thread (Linux 6.12 and later).

Linux's EEVDF scheduler lets a running task keep its core for the rest of its slice
(0.7 ms times 1 + log2 of the cores, 1.4 ms on 2 cores) before a woken task of the same
priority runs, unless the woken task asked for a shorter slice (kernel commits 857b158,
"sched/eevdf: Use sched_attr::sched_runtime to set request/slice suggestion", and
85e511d, "Allow shorter slices to wakeup-preempt"). A slice changes how soon a task runs,
not how much CPU it gets: that stays the weight's (its nice value).

The event loop's thread does a fraction of a millisecond per Idle, woken by each request:
when the cores are busy (large reports read beside, PostgreSQL, a client on the same
host), every wake-up waited for another task's slice, and an Idle's 0.4 ms took several.
With the shortest slice the kernel allows, the loop's thread preempts such a task when it
wakes. On the 2-core host (bench reports, phases 1 and 4) the loop's wait for a core fell
from ~190 to ~40 µs per Idle, and beside two spinning processes from ~490 to ~290 µs.

No privilege is needed. Kernels before 6.12 have no per-task slice: there the request
changes nothing and the slice reads 0. On other systems (and other architectures, whose
system call numbers are not listed here) nothing is done.

Only the loop's thread is to have it. A thread or process started by a thread inherits
its slice, and the loop's thread starts many: the interpreter's default executor
(asyncio.to_thread, a password's hash), uvloop's resolver threads, a process pool's
manager and feeder threads. Each of those would then compete with the loop on the loop's
terms. So the short slice is asked for with SCHED_FLAG_RESET_ON_FORK, and what the loop's
thread starts begins at the kernel's default slice (checked on 6.18; the flag is cleared
in the child). The flag also resets a negative nice value to 0 in the child: for a loop
run at a negative nice value it is not set, and its threads inherit both. The bulk
threads and the report workers, which are to yield to the loop, ask for the default
again themselves (`use_default_slice`), flag or none.

Neither Python nor a package on PyPI binds sched_setattr(2): ctypes calls it here.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import sys

SHORTEST = 100_000  # ns: the kernel clamps a requested slice to 0.1-100 ms
_SCHED_OTHER = 0
# Children start at the default slice. Clearing the flag again takes CAP_SYS_NICE, so a
# slice given back keeps it.
_RESET_ON_FORK = 0x01

# sched_setattr and sched_getattr (asm-generic numbers, which arm64 uses)
_CALLS = {"x86_64": (314, 315), "aarch64": (274, 275), "arm64": (274, 275)}


class _SchedAttr(ctypes.Structure):
    """struct sched_attr, as of Linux 4.13 (SCHED_ATTR_SIZE_VER1)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),  # a fair task's requested slice, in ns
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
        ("sched_util_min", ctypes.c_uint32),
        ("sched_util_max", ctypes.c_uint32),
    ]


def use_short_slice() -> int | None:
    """Ask for the shortest slice for the calling thread, not for the threads and
    processes it starts; the slice it then has in ns (0: a kernel without per-task
    slices), or None where that cannot be asked (not Linux, another architecture, a
    sandbox that refuses the call, a policy other than the normal one)."""
    return _set_slice(SHORTEST, reset_on_fork=True)


def use_default_slice() -> int | None:
    """Give the calling thread the kernel's default slice back (a requested slice of 0)."""
    return _set_slice(0, reset_on_fork=False)


def slice_of(thread_id: int = 0) -> int | None:
    """The slice of a thread (0: the calling one) in ns; None where it cannot be read."""
    attr = _get(thread_id)
    return None if attr is None else int(attr.sched_runtime)


def _set_slice(nanoseconds: int, *, reset_on_fork: bool) -> int | None:
    attr = _get(0)
    if attr is None or attr.sched_policy != _SCHED_OTHER:
        return None  # SCHED_BATCH, SCHED_IDLE or realtime: whoever set it knows better
    attr.size = ctypes.sizeof(_SchedAttr)
    kept = attr.sched_flags & _RESET_ON_FORK  # see _RESET_ON_FORK
    attr.sched_flags = _RESET_ON_FORK if reset_on_fork and attr.sched_nice >= 0 else kept
    attr.sched_runtime = nanoseconds  # nice and policy stay as read
    setattr_call, _ = _CALLS[platform.machine()]
    if _libc().syscall(setattr_call, 0, ctypes.byref(attr), 0) != 0:
        return None
    return slice_of(0)


def _get(thread_id: int) -> _SchedAttr | None:
    if sys.platform != "linux" or platform.machine() not in _CALLS:
        return None
    _, getattr_call = _CALLS[platform.machine()]
    attr = _SchedAttr()
    found = _libc().syscall(
        getattr_call, thread_id, ctypes.byref(attr), ctypes.sizeof(_SchedAttr), 0
    )
    return attr if found == 0 else None


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)
