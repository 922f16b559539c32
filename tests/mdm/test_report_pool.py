"""Large reports read by a worker process (mdm/report_pool.py): the same Report, the same
inventory and the same refusals as in process, and nothing lost when a worker is killed."""

from __future__ import annotations

import asyncio
import os
import plistlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchardist.mdm.inventory import READERS, stored_inventory
from orchardist.mdm.report_digest import Digest, PackedResult
from orchardist.mdm.report_pool import ReportPool
from orchardist.mdm.reports import OFF_LOOP_BYTES, ReportError, parse_report
from orchardist.simulator.library import stocked_apps, stocked_certificates

pytestmark = pytest.mark.anyio


def large_report(key: str, items: list[dict[str, Any]], **fields: Any) -> bytes:
    envelope = {"Status": "Acknowledged", "UDID": "D1", "CommandUUID": "C1", **fields}
    present = {name: value for name, value in envelope.items() if value is not None}
    body = plistlib.dumps({**present, key: items, "Other": {"Nested": [1, 2]}})
    assert len(body) > OFF_LOOP_BYTES
    return body


def apps() -> bytes:
    return large_report("InstalledApplicationList", list(stocked_apps(500)))


def certificates() -> bytes:
    items = [*stocked_certificates(230), {"CommonName": "broken", "Data": b"\x30\x03not"}]
    return large_report("CertificateList", items)


@pytest.fixture
async def pool() -> AsyncIterator[ReportPool]:
    started = ReportPool(1)
    try:
        yield started
    finally:
        await started.close()


@pytest.mark.parametrize("make", [apps, certificates])
async def test_a_large_report_is_read_by_a_worker_process(pool: ReportPool, make: Any) -> None:
    body = make()
    found = await pool.digest(body)
    assert isinstance(found, Digest)
    assert found.pid != os.getpid()
    report = await pool.read(body)
    expected = parse_report(body)
    assert report == expected
    assert isinstance(report.result, PackedResult)
    assert list(report.result) == list(expected.result)
    assert dict(report.result.plus("ErrorChain", [])) == {**expected.result, "ErrorChain": []}
    assert report.inventories is not None
    for request_type in READERS:
        assert report.inventories[request_type] == stored_inventory(request_type, expected.result)
    assert pool.digested == 2
    assert pool.read_in_process == 0


async def test_a_small_report_is_read_in_process(pool: ReportPool) -> None:
    body = plistlib.dumps({"Status": "Idle", "UDID": "D1"})
    report = await pool.read(body)
    assert report == parse_report(body)
    assert report.inventories is None
    assert pool.digested == 0


@pytest.mark.parametrize(
    "body",
    [
        large_report("InstalledApplicationList", list(stocked_apps(500)), CommandUUID=None),
        apps().replace(b"<key>Status</key>", b"<key>Statue</key>"),
        apps()[:-2000],
        large_report("InstalledApplicationList", list(stocked_apps(500)), Status="Sideways"),
    ],
    ids=["no-command-uuid", "no-status", "truncated", "unknown-status"],
)
async def test_refusals_come_back_with_the_same_reason(pool: ReportPool, body: bytes) -> None:
    with pytest.raises(ReportError) as in_process:
        parse_report(body)
    with pytest.raises(ReportError) as from_worker:
        await pool.read(body)
    assert str(from_worker.value) == str(in_process.value)
    assert pool.digested == 1


@pytest.mark.skipif(sys.platform != "linux", reason="SCHED_IDLE is Linux's")
async def test_a_worker_gives_the_cores_to_the_server_first(pool: ReportPool) -> None:
    worker = await pool.worker_pid()
    assert os.sched_getscheduler(worker) == os.SCHED_IDLE
    assert os.getpriority(os.PRIO_PROCESS, worker) == 19
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the server's own process is as it was


async def test_a_killed_worker_loses_nothing(pool: ReportPool) -> None:
    body = apps()
    killed = await pool.worker_pid()
    os.kill(killed, signal.SIGKILL)
    await _gone(killed)
    assert await pool.read(body) == parse_report(body)  # read in process meanwhile
    assert (pool.read_in_process, pool.digested) == (1, 0)
    assert await pool.worker_pid() != killed  # a new pool, for the next report
    found = await pool.digest(body)
    assert isinstance(found, Digest)
    assert found.pid not in (killed, os.getpid())


async def test_a_worker_killed_while_reading_loses_nothing(pool: ReportPool) -> None:
    body = apps()
    worker = await pool.worker_pid()
    reading = [asyncio.create_task(pool.read(body)) for _ in range(3)]
    await asyncio.sleep(0)
    os.kill(worker, signal.SIGKILL)
    expected = parse_report(body)
    assert await asyncio.gather(*reading) == [expected] * 3
    assert pool.digested + pool.read_in_process == 3
    assert await pool.read(body) == expected


async def test_a_closed_pool_reads_in_process(pool: ReportPool) -> None:
    await pool.worker_pid()
    await pool.close()
    body = apps()
    assert await pool.read(body) == parse_report(body)
    assert pool.digested == 0


async def test_no_processes_reads_in_process() -> None:
    pool = ReportPool(0)
    body = apps()
    report = await pool.read(body)
    assert report == parse_report(body)
    assert report.inventories is None
    await pool.close()


SERVER = """
import asyncio
from orchardist.mdm.report_pool import ReportPool

async def serve():
    pool = ReportPool(1)
    print(await pool.worker_pid(), flush=True)
    await asyncio.sleep(60)

asyncio.run(serve())
"""


async def test_a_killed_server_leaves_no_worker_behind() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        worker = int(await server.stdout.readline())
        fork_server = int(_stat(worker)[1])
    finally:
        server.kill()  # SIGKILL: the pool is never shut down
        await server.wait()
    await _gone(worker)
    await _gone(fork_server)


async def _gone(pid: int) -> None:
    """Until the process has exited (a zombie until the fork server waits for it)."""
    for _ in range(500):
        if _state(pid) in ("Z", "X", None):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"process {pid} still runs")


def _state(pid: int) -> str | None:
    return (_stat(pid) or [None])[0]


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (state, parent…); [] when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []
