"""A throw-away PostgreSQL database for a scenario, and the CPU PostgreSQL spends on it.

The server's processes are read from /proc: each backend's command line names its
database ("postgres: USER DATABASE HOST(PORT) STATE"), so the figure is the backends that
served this database plus the shared writers (WAL writer, checkpointer, background writer),
which work for every database on the server.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path

import asyncpg

ADMIN_URL = os.environ.get(
    "ORCHARDIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_SHARED = (b"walwriter", b"checkpointer", b"background writer")


def create_database() -> str | None:
    """The URL of a fresh database, or None when no PostgreSQL server answers."""
    name = f"orchardist_bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError):
        return None
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def cpu_seconds(url: str) -> float:
    """CPU seconds so far of the backends serving `url`'s database and the shared writers.
    A backend that exits between two readings takes its CPU with it: read while the
    server's connection pool is open, or use `CpuSampler`."""
    return sum(_cpu_by_process(url).values())


def _cpu_by_process(url: str) -> dict[int, float]:
    database = url.rsplit("/", 1)[1].encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            if not cmdline.startswith(b"postgres:"):
                continue
            words = cmdline.split()
            if database not in words and not any(name in cmdline for name in _SHARED):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return found


class CpuSampler:
    """PostgreSQL's CPU for `url` between `start()` and `seconds()`, backends that exit
    meanwhile included: read every `interval` seconds on a thread, each backend's last
    reading kept (a backend's final `interval` of work may be missed)."""

    def __init__(self, url: str, interval: float = 0.25) -> None:
        self.url, self.interval = url, interval
        self._baseline: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CpuSampler:
        self._baseline = _cpu_by_process(self.url)
        self._last = dict(self._baseline)
        self._thread.start()
        return self

    def seconds(self) -> float:
        """CPU so far since `start()`; the sampling goes on until `stop()`."""
        self._last |= _cpu_by_process(self.url)
        return sum(cpu - self._baseline.get(pid, 0.0) for pid, cpu in self._last.items())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._last |= _cpu_by_process(self.url)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
