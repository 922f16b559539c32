"""Scenario `console`: the devices page at 100,000 devices on PostgreSQL. Server time of
the console's page itself (GET /console/devices as a signed-in operator: the session, the
keyset query and the template with its checkboxes and selection form) for the first page,
a later page reached through its "Next page" links, a search (and one of two characters,
too short for the name's trigram index: it reads every name) and a filter, each against
the 300 ms limit; the same for GET /api/v1/devices, which shares the storage query; then
the periodic compliance pass over every device.

The fleet (enrollments, inventory with SecurityInfo, groups, over-the-air enrollment
sessions) is written in bulk in a fresh bench database, dropped afterwards; the requests
run in process through the ASGI app, so the figures are the server's, not a network's.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table, insert, text
from sqlalchemy.engine import Connection
from tests.db import POSTGRES_ENV
from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Server, running

from bench.postgres import ADMIN_URL as POSTGRES
from bench.postgres import create_database as _postgres_database
from bench.postgres import drop_database as _drop
from orchardist.logs import configure_logging
from orchardist.os_versions import sort_key
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.repositories import SqlStorage
from orchardist.storage.sql.tables import device_groups, enrollments, inventory, ota_sessions
from orchardist.tokens import create_api_token

LIMIT_MS = 300
PAGE = 50  # devices per page, as the console shows them
LATER_PAGE = 500
RUNS = 7  # each measured request is repeated; the median is reported
RULES = {"passcode": True, "min_os_version": {"iOS": "17.0", "iPadOS": "17.0"},
         "checked_in_days": 14}  # fmt: skip
PRODUCTS = [("iPhone15,2", "iPhone"), ("iPhone14,5", "iPhone"), ("iPad13,4", "iPad"),
            ("iPhone16,1", "iPhone")]  # fmt: skip
VERSIONS = ["16.7.8", "17.4.1", "17.5", "17.6.1", "18.0", "18.1"]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    configure_logging("warning")
    probe = _postgres_database()  # only to see that the server is there
    if probe is None:
        return [_row("postgres", 0, "", "PostgreSQL not reachable: not measured")]
    _drop(probe)
    os.environ.setdefault(POSTGRES_ENV, POSTGRES)  # fresh_database reads it
    return asyncio.run(_measure(args.console_devices))


async def _measure(devices: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        async with running("postgres", Path(tmp), compliance=RULES) as server:
            started = time.perf_counter()
            await _seed(server, devices)
            seeded = time.perf_counter() - started
            started = time.perf_counter()
            assert server.services.compliance is not None
            evaluated = await server.services.compliance.recheck()
            pass_seconds = time.perf_counter() - started
            await _database(server).write(lambda c: c.execute(text("ANALYZE")))
            assert evaluated == devices
            timings = await _time_console(server, devices)
            timings |= await _time_api(server, devices)
    note = f"{devices:,} devices, {PAGE} a page, median of {RUNS}"
    rows = [_row(f"seed {devices:,} devices (bulk)", seeded, "s")]
    for label, ms in timings.items():
        rows.append(_row(f"{label}: server time", ms, "ms", note))
        verdict = "meets it" if ms < LIMIT_MS else "OVER the limit"
        rows.append(_row(f"{label}: ratio to the {LIMIT_MS} ms limit", ms / LIMIT_MS, "",
                         f"< 1 meets it: {verdict}"))  # fmt: skip
    rows.append(_row("compliance pass over every device", pass_seconds, "s",
                     f"{devices / pass_seconds:,.0f} devices/s"))  # fmt: skip
    return rows


Fetch = Callable[[str], Awaitable[httpx.Response]]


async def _time_console(server: Server, devices: int) -> dict[str, float]:
    """The HTML page as an operator gets it (one row checkbox per device: the heaviest
    render); a row is counted by its hidden `page_udid` field."""
    await add_account(server, "bench-operator", "operator")
    async with browser(server) as client:
        await signed_in(client, "bench-operator")
        first = "/console/devices"
        later, page = first, min(LATER_PAGE, devices // PAGE)
        for _ in range(page - 1):  # walk there through the page's own "Next page" links
            html = (await client.get(later)).text
            later = unescape(html.split('rel="next" href="')[1].split('"')[0])
        search = f"/console/devices?q={_serial(devices // 2)[:6]}"
        short = f"/console/devices?q={_serial(devices // 2)[:2]}"
        broken = "/console/devices?compliance=non_compliant&sort=last_seen&order=desc"
        pages = {
            "console page 1 (by name)": (first, PAGE),
            f"console page {page} (by name, cursor)": (later, PAGE),
            "console search (name, serial, UDID, user)": (search, None),
            "console search, 2 characters": (short, None),
            "console page 1, non-compliant only": (broken, PAGE),
        }
        return {
            label: await _median(client.get, url, _html_rows, size)
            for label, (url, size) in pages.items()
        }


async def _time_api(server: Server, devices: int) -> dict[str, float]:
    token = await create_api_token(server.services.storage, "bench", "viewer")
    fetch = functools.partial(server.http.get, headers={"Authorization": f"Bearer {token}"})
    first = f"/api/v1/devices?sort=name&limit={PAGE}"
    later, page = first, min(LATER_PAGE, devices // PAGE)
    for _ in range(page - 1):  # walk there as a client follows the Link headers
        answer = await fetch(later)
        later = answer.headers["link"].split(">")[0].lstrip("<")
    searched = f"/api/v1/devices?sort=name&limit={PAGE}&q={_serial(devices // 2)[:6]}"
    short = f"/api/v1/devices?sort=name&limit={PAGE}&q={_serial(devices // 2)[:2]}"
    broken = f"/api/v1/devices?compliant=false&sort=last_seen&order=desc&limit={PAGE}"
    pages = {
        "API page 1 (by name)": (first, PAGE),
        f"API page {page} (by name, cursor)": (later, PAGE),
        "API search (name, serial, UDID, user)": (searched, None),
        "API search, 2 characters": (short, None),
        "API page 1, non-compliant only": (broken, PAGE),
    }
    return {
        label: await _median(fetch, url, _json_rows, size) for label, (url, size) in pages.items()
    }


def _html_rows(answer: httpx.Response) -> int:
    return answer.text.count('name="page_udid"')


def _json_rows(answer: httpx.Response) -> int:
    return len(answer.json())


async def _median(
    fetch: Fetch, url: str, rows: Callable[[httpx.Response], int], size: int | None = None
) -> float:
    """Median milliseconds of RUNS requests; each must answer `size` rows (None: some)."""
    await fetch(url)  # warm: the first call pays for imports
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = await fetch(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
        found = rows(answer)
        assert found == size if size is not None else found > 0, (url, found)
    return statistics.median(times)


async def _seed(server: Server, devices: int) -> None:
    """Enrollments, inventory (SecurityInfo, a few facts), a group of one device in ten
    and an over-the-air enrollment session for one in five, in bulk."""
    now = datetime.now(UTC)
    pick = random.Random(100_000)
    database = _database(server)
    tables: list[tuple[Table, Iterator[dict[str, Any]]]] = [
        (enrollments, (_enrollment(n, now, pick) for n in range(devices))),
        (inventory, (_inventory(n, now, pick) for n in range(devices))),
        (device_groups, ({"name": "sales", "device_id": _udid(n)}
                         for n in range(0, devices, 10))),
        (ota_sessions, (_session(n, now) for n in range(0, devices, 5))),
    ]  # fmt: skip
    for table, rows in tables:
        for chunk in _chunks(rows, 5000):
            await database.write(functools.partial(_insert, table, chunk))


def _insert(table: Table, rows: list[dict[str, Any]], conn: Connection) -> None:
    conn.execute(insert(table), rows)


def _database(server: Server) -> Database:
    storage = server.services.storage
    assert isinstance(storage, SqlStorage)
    return storage.database


def _enrollment(n: int, now: datetime, pick: random.Random) -> dict[str, Any]:
    product, model_name = pick.choice(PRODUCTS)
    version = pick.choice(VERSIONS)
    return {
        "device_id": _udid(n), "topic": "com.apple.mgmt.bench", "serial_number": _serial(n),
        "model": "MQ9X3", "model_name": model_name, "product_name": product,
        "os_version": version, "os_version_key": sort_key(version), "build_version": "21F90",
        "device_name": f"{pick.choice(['Anna', 'Ben', 'Chen', 'Dara'])}'s {model_name} {n}",
        "identity_sha256": hashlib.sha256(b"%d" % n).hexdigest(), "enrolled": True,
        "token": b"\x01" * 32, "push_magic": f"magic-{n}",
        "authenticated_at": now - timedelta(days=400),
        "enrolled_at": now - timedelta(minutes=pick.randrange(365 * 24 * 60)),
        "last_seen_at": now - timedelta(minutes=pick.randrange(30 * 24 * 60)),
    }  # fmt: skip


def _inventory(n: int, now: datetime, pick: random.Random) -> dict[str, Any]:
    passcode = pick.random() < 0.95
    security = {"HardwareEncryptionCaps": 3, "PasscodePresent": passcode,
                "PasscodeCompliant": passcode}  # fmt: skip
    facts = {"BatteryLevel": 0.8, "DeviceCapacity": 128.0, "AvailableDeviceCapacity": 64.0}
    return {"device_id": _udid(n), "facts": facts, "facts_seen": {}, "security": security,
            "restrictions": {}, "updated_at": now - timedelta(days=1)}  # fmt: skip


def _session(n: int, now: datetime) -> dict[str, Any]:
    return {"token_sha256": hashlib.sha256(b"s%d" % n).hexdigest(), "user": f"user{n:06}",
            "groups": ["staff"], "phase": "enrolled", "created_at": now, "expires_at": now,
            "device_id": _udid(n)}  # fmt: skip


def _udid(n: int) -> str:
    return f"00008030-{hashlib.sha256(b'u%d' % n).hexdigest()[:16].upper()}"


def _serial(n: int) -> str:
    return hashlib.sha256(b"serial%d" % n).hexdigest()[:10].upper()


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "console", "metric": metric, "value": value, "unit": unit, "note": note}
