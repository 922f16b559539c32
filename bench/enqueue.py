"""Scenario `enqueue`: one command queued for every enrolled device of a large fleet, on
SQLite and PostgreSQL, through the server's own path (`queue_command` with targets
"all", which the database resolves by INSERT … SELECT: a command row per device and a
push job per device, in one transaction).

The fleet is written straight into the database (a generated series, seconds for a
million): 100,000 enrolled devices, queue one command to all; then 900,000 more, queue
one to all 1,000,000; then one to a static group of 100,000 among them. Target (BRIEF P4):
100,000 targets in ≤ 2 s, 1,000,000 in ≤ 20 s. `--enqueue-devices` sets the large fleet.
Each row notes the CPU seconds spent and the load average: on a busy machine the wall time
is stretched well past the CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.postgres import cpu_seconds, create_database, drop_database
from bench.targets import target_row
from orchardist.mdm.dispatch import queue_command
from orchardist.storage.scopes import InGroup
from orchardist.storage.sql.database import DriverSql
from orchardist.storage.sql.migrate import upgrade
from orchardist.storage.sql.repositories import SqlStorage, open_storage

FIRST = 100_000
TARGET_SECONDS = {100_000: 2.0, 1_000_000: 20.0}  # BRIEF P4
GROUP = "bench-tenth"

# Enrolled devices $2 to $3 (inclusive), each with a push token. UDIDs are random hex, as
# real ones are to the database: devices enroll in no order of their UDIDs.
_SEED_POSTGRES = """
INSERT INTO enrollments (device_id, topic, identity_sha256, enrolled, token, push_magic,
                         authenticated_at, enrolled_at)
SELECT upper(md5('bench-' || n)), 'com.apple.mgmt.bench', repeat('0', 64), true,
       sha256(('bench-' || n)::bytea), 'magic-' || n, $1::timestamptz, $1::timestamptz
FROM generate_series($2::int, $3::int) AS n
"""
_SEED_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT $2 UNION ALL SELECT i + 1 FROM n WHERE i < $3)
INSERT INTO enrollments (device_id, topic, identity_sha256, enrolled, token, push_magic,
                         authenticated_at, enrolled_at)
SELECT hex(randomblob(16)), 'com.apple.mgmt.bench', printf('%064d', 0), 1,
       randomblob(32), 'magic-' || i, $1, $1
FROM n
"""
# $2 devices picked at random.
_GROUP = """
INSERT INTO device_groups (name, device_id)
SELECT $1, device_id FROM enrollments ORDER BY random() LIMIT $2
"""


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [*_on_sqlite(args.enqueue_devices), *_on_postgres(args.enqueue_devices)]


def _on_sqlite(devices: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return asyncio.run(_measure("sqlite", url, devices))


def _on_postgres(devices: int) -> list[dict[str, Any]]:
    url = create_database()
    if url is None:
        return [_row("postgres", 0, "", "PostgreSQL not reachable: not measured")]
    try:
        return asyncio.run(_measure("postgres", url, devices))
    finally:
        drop_database(url)


async def _measure(backend: str, url: str, devices: int) -> list[dict[str, Any]]:
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    await upgrade(url)
    storage = await open_storage(url)
    rows = []
    try:
        seeded = 0
        for fleet in sorted({min(FIRST, devices), devices}):
            await _seed(storage, backend, seeded, fleet)
            seeded = fleet
            queued, seconds, note = await _queue(storage, url, None)
            assert queued == fleet, (queued, fleet)
            rows.append(_timed(f"queue one command to all {fleet:,} ({label})", seconds, fleet,
                               note))  # fmt: skip
        members = seeded // 10
        await storage.database.write(lambda conn: DriverSql(conn).execute(_GROUP, GROUP, members))
        await _analyze(storage, backend)
        queued, seconds, note = await _queue(storage, url, InGroup(GROUP))
        rows.append(_timed(f"queue one command to a group of {queued:,} in {seeded:,} ({label})",
                           seconds, queued, note))  # fmt: skip
    finally:
        await storage.close()
    return rows


async def _seed(storage: SqlStorage, backend: str, start: int, end: int) -> None:
    sql = _SEED_SQLITE if backend == "sqlite" else _SEED_POSTGRES
    now = datetime.now(UTC)
    await storage.database.write(lambda conn: DriverSql(conn).execute(sql, now, start, end - 1))
    await _analyze(storage, backend)


async def _analyze(storage: SqlStorage, backend: str) -> None:
    """Planner statistics, as a fleet that grew over months has them (autovacuum would
    catch up with a bulk load a while later)."""
    if backend != "sqlite":
        await storage.database.write(lambda conn: DriverSql(conn).execute("ANALYZE"))


async def _queue(storage: SqlStorage, url: str, targets: InGroup | None) -> tuple[int, float, str]:
    """How many were queued, in how many seconds, and a note with the CPU seconds spent
    (this process, with SQLite's worker thread; PostgreSQL's backends and writers) and the
    machine's load: on a shared machine the wall time is the CPU time stretched by it."""
    postgres = not url.startswith("sqlite")
    cpu, database_cpu = time.process_time(), cpu_seconds(url) if postgres else 0.0
    started = time.perf_counter()
    queued = await queue_command(storage, "DeviceInformation", {"Queries": ["OSVersion"]},
                                 targets, now=datetime.now(UTC))  # fmt: skip
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu + (cpu_seconds(url) - database_cpu if postgres else 0.0)
    note = f"CPU {cpu:.1f} s, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    return queued.targets, seconds, note


def _timed(metric: str, seconds: float, targets: int, note: str) -> dict[str, Any]:
    target = TARGET_SECONDS.get(targets)
    if target is None:
        return _row(metric, seconds, "s", note)
    return target_row("enqueue", metric, seconds, "s", target=target, better="lower", note=note)


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "enqueue", "metric": metric, "value": value, "unit": unit, "note": note}
