"""Profiles at 100,000 devices on PostgreSQL: `python -m bench.profiles_scale [--devices N]`.

Seeds N enrolled devices (one shared identity certificate: tests/profiles/fleet.py) each
holding version 1 of a profile assigned to all, then measures, each in a process of its own
(so its peak RSS is the pass's, not the seeding's):

- a full reconciliation pass that finds nothing to do (what the server runs at start and
  in the daily repair): devices per second, peak RSS;
- a new version for all N: the request's part (the first tenth of a minute's pace queued,
  the rest scheduled) and the paced delivery (pace set high, so it is bound by signing),
  devices per second, peak RSS.

The goal (P7): every server process under 300 MB RSS with 100,000 devices enrolled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert
from tests.profiles.fleet import seed_enrolled, signer

from bench.postgres import create_database, drop_database
from orchardist.keys.master import MasterKeys
from orchardist.profiles.library import ProfileLibrary
from orchardist.profiles.spec import build_profile
from orchardist.storage.profiles import TargetKind
from orchardist.storage.sql.migrate import upgrade
from orchardist.storage.sql.repositories import open_storage
from orchardist.storage.sql.tables import device_profiles

IDENTIFIER = "com.example.bench.wifi"
FAST = 1_000_000  # devices a minute: the bench measures signing, not the pace
INLINE = 600  # queued in the request, as at the default pace
KEYS = MasterKeys((b"bench master key: not a secret.."[:32],))  # the same in every process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles_scale")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--child", choices=["full", "version"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.url, args.devices))))
        return
    for row in run(args.devices):
        print(f"{row['metric']:<58} {row['value']:>10.1f} {row['unit']:<5} {row['note']}")


def run(devices: int) -> list[dict[str, Any]]:
    measured = passes(devices, ("full", "version"))
    if measured is None:
        return [_row("postgres", 0, "", "PostgreSQL not reachable: not measured")]
    full, version = measured["full"], measured["version"]
    note = f"{devices} devices, PostgreSQL, own process"
    return [
        _row("full pass, nothing to do: devices/s", devices / full["seconds"], "1/s", note),
        _row("full pass, nothing to do: peak RSS", full["rss_mb"], "MB", note),
        _row(
            "new version: the request (scheduled)",
            version["request_seconds"],
            "s",
            f"{version['scheduled']} scheduled, {INLINE} queued at once",
        ),
        _row(
            "new version: delivered devices/s",
            devices / version["deliver_seconds"],
            "1/s",
            "encrypted + signed + queued, pace set high",
        ),
        _row("new version: peak RSS", version["rss_mb"], "MB", note),
    ]


def passes(devices: int, which: tuple[str, ...]) -> dict[str, dict[str, Any]] | None:
    """Each of `which` ("full", "version") measured in a child on a fresh database seeded
    with N devices; None when no PostgreSQL server answers."""
    url = create_database()
    if url is None:
        return None
    try:
        asyncio.run(_seed(url, devices))
        return {name: _in_child(name, url, devices) for name in which}
    finally:
        drop_database(url)


async def _seed(url: str, devices: int) -> None:
    """N enrolled devices, the profile assigned to all, version 1 installed on each."""
    await upgrade(url)
    storage = await open_storage(url, KEYS)
    now = datetime.now(UTC)
    udids = [f"BENCH-{n:06}" for n in range(devices)]
    try:
        await seed_enrolled(storage, udids, now)
        library = ProfileLibrary(storage, signer(now), clock=lambda: datetime.now(UTC))
        await library.add(_profile("Office"))
        await storage.set_assignments(IDENTIFIER, TargetKind.ALL, [""], assigned=True)
        rows = insert(device_profiles)
        for start in range(0, devices, 5000):
            chunk = [
                {"device_id": udid, "identifier": IDENTIFIER, "desired_version": 1,
                 "installed_version": 1, "state": "installed", "command_uuid": None,
                 "error": None, "updated_at": now}
                for udid in udids[start : start + 5000]
            ]  # fmt: skip
            await storage.database.write(lambda conn, chunk=chunk: conn.execute(rows, chunk))
    finally:
        await storage.close()
    await _analyze(url)  # as autovacuum would have on a database that grew to this


async def _analyze(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _child(which: str, url: str, devices: int) -> dict[str, Any]:
    storage = await open_storage(url, KEYS)
    try:
        now = datetime.now(UTC)
        library = ProfileLibrary(storage, signer(now), clock=lambda: datetime.now(UTC),
                                 delivery_per_minute=FAST)  # fmt: skip
        library.inline_limit = INLINE
        started = time.perf_counter()
        if which == "full":
            done = await library.reconcile()
            assert (done.installs, done.removals) == (0, 0), done
            return {"seconds": time.perf_counter() - started, "rss_mb": _peak_rss_mb()}
        await library.add(_profile("Office-5G"))
        done = await library.reconcile(identifier=IDENTIFIER)
        asked = time.perf_counter()
        assert done.installs == devices, done
        while await library.delivery.run_pass():
            pass
        delivered = time.perf_counter() - asked
        return {"request_seconds": asked - started, "scheduled": done.scheduled,
                "deliver_seconds": delivered, "rss_mb": _peak_rss_mb()}  # fmt: skip
    finally:
        await storage.close()


def _in_child(which: str, url: str, devices: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.profiles_scale", "--child", which, "--url", url,
               "--devices", str(devices)]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(command, cwd=root, env=os.environ, capture_output=True)
    if out.returncode:
        raise SystemExit(f"{which} failed:\n{out.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    print(f"{which}: {result}", file=sys.stderr, flush=True)  # as each phase ends
    return result


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _profile(ssid: str) -> dict[str, Any]:
    spec = {"identifier": IDENTIFIER, "name": "Wi-Fi",
            "payloads": [{"type": "wifi", "SSID_STR": ssid, "EncryptionType": "None"}]}  # fmt: skip
    return build_profile(spec, base_dir=Path("."), env={})


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"metric": metric, "value": round(value, 1), "unit": unit, "note": note}


if __name__ == "__main__":
    main()
