"""Bulk work beside the event loop (orchardist.bulk_threads): run as asyncio.to_thread would
run it, on threads that yield the cores to the loop's thread first (on Linux)."""

from __future__ import annotations

import contextvars
import os
import sys
import threading

import pytest

from orchardist import bulk_threads

pytestmark = pytest.mark.anyio

_field: contextvars.ContextVar[str] = contextvars.ContextVar("field", default="unset")


def _priority() -> tuple[int, int]:
    """(this thread's id, its nice value)."""
    thread = threading.get_native_id()
    return thread, os.getpriority(os.PRIO_PROCESS, thread)


async def test_work_runs_on_another_thread_with_the_callers_context() -> None:
    _field.set("bound by the request")
    thread, _ = await bulk_threads.run(_priority)
    assert thread != threading.get_native_id()
    assert await bulk_threads.run(_field.get) == "bound by the request"
    assert await bulk_threads.run(int, "ff", base=16) == 255


async def test_its_exceptions_reach_the_caller() -> None:
    with pytest.raises(ZeroDivisionError):
        await bulk_threads.run(divmod, 1, 0)


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
async def test_the_threads_run_below_the_loops_priority() -> None:
    _, ours = _priority()
    _, theirs = await bulk_threads.run(_priority)
    assert theirs == min(19, ours + bulk_threads.NICENESS)
    _, ours_after = _priority()
    assert ours_after == ours  # the loop's own thread keeps its priority
