"""A server killed (SIGKILL) in the middle of a fan-out: the server started afterwards
pushes the rest once the dead one's leases end, and no device is pushed more than twice
(its lost batch once again, nothing else)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from orchardist.storage.sql.repositories import open_storage
from orchardist.storage.sql.tables import enrollments
from tests.push.identity import push_identity
from tests.server import ORCHARDIST, orchardist, running_server, serve_process

DEVICES = 6000


async def _bulk_enroll(url: str) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "device_id": f"KILL-{n:05}",
            "topic": "com.apple.mgmt.test",
            "identity_sha256": "0" * 64,
            "enrolled": True,
            "token": hashlib.sha256(f"kill-{n}".encode()).digest(),
            "push_magic": f"magic-{n}",
            "authenticated_at": now,
            "enrolled_at": now,
        }
        for n in range(DEVICES)
    ]
    storage = await open_storage(url)
    try:
        await storage.database.write(lambda conn: conn.execute(insert(enrollments), rows))
    finally:
        await storage.close()


def _pushed(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM enrollments WHERE pushed_at IS NOT NULL"
        ).fetchone()
    return int(count)


def test_a_killed_pusher_is_resumed_by_another_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    database = data_dir / "orchardist.db"
    asyncio.run(_bulk_enroll(f"sqlite+aiosqlite:///{database}"))
    identity = push_identity(tmp_path / "apple")
    orchardist(data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
               "--key", str(identity.key_file), "--force")  # fmt: skip
    client_ca, peer_ca = tmp_path / "apple-ca.pem", tmp_path / "peer-ca.pem"
    client_ca.write_bytes(identity.ca_pem)
    peer = subprocess.Popen(
        [sys.executable, "-m", "orchardist.simulator.apns_peer",
         "--client-ca", str(client_ca), "--ca-out", str(peer_ca)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert peer.stdout is not None
        env = {
            **os.environ,
            "ORCHARDIST_APNS_URL": peer.stdout.readline().strip(),
            "ORCHARDIST_APNS_CA_FILE": str(peer_ca),
            # Longer than a batch of 1,000 pushes takes on a busy machine (parallel test
            # workers): a live pusher whose lease ran out would see its own batch retried.
            "ORCHARDIST_PUSH_LEASE_SECONDS": "8",
            "ORCHARDIST_PUSH_POLL_SECONDS": "0.2",
        }
        with serve_process(data_dir, http=True, env=env) as (_, doomed):
            sender = subprocess.Popen(
                [*ORCHARDIST, "--data-dir", str(data_dir), "command", "send", "DeviceLock",
                 "--all", "--json"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while _pushed(database) < 1000:
                assert doomed.poll() is None, "the server ended before it could be killed"
                assert time.monotonic() < deadline, "no pushes from the server"
                time.sleep(0.02)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
        at_kill = _pushed(database)
        assert at_kill < DEVICES
        # The next server starts while the CLI still watches: it pushes nothing until the
        # dead one's lease (8 s) has ended, and the CLI sees the fan-out stall after 4 s.
        with running_server(data_dir, http=True, env=env):
            deadline = time.monotonic() + 90
            while _pushed(database) < DEVICES:
                assert time.monotonic() < deadline, f"{_pushed(database)} of {DEVICES} pushed"
                time.sleep(0.2)
        sender.wait(timeout=60)  # it watched the fan-out stall, and says so
    finally:
        peer.terminate()
        out, _ = peer.communicate(timeout=30)
    tally = json.loads(out.strip().splitlines()[-1])
    assert tally["tokens"] == DEVICES  # every device was pushed
    assert tally["most_per_token"] <= 2  # at most one retry each
    # Only what was in flight was redone: at most three batches of 1,000 (PushSettings).
    assert tally["accepted"] <= DEVICES + 3 * 1000
