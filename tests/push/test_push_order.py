"""First pushes before re-pushes, a lease that ends before its push was sent, and two
pusher processes on one database: counted per device from the APNs peer's side, on every
backend."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from orchardist.simulator.apns_peer import ApnsPeer, Push
from orchardist.storage.sql.repositories import SqlStorage, open_storage
from orchardist.storage.sql.tables import enrollments
from tests.db import fresh_database
from tests.push.conftest import make_sender
from tests.push.identity import PushIdentity
from tests.push.test_pusher import START, Clock, enroll, pusher_for, queue, token_of

pytestmark = pytest.mark.anyio


async def test_every_device_is_pushed_once_before_any_is_pushed_twice(
    storage: SqlStorage, peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    """A slow APNs (0.2 s an answer, 20 at a time: 300 devices take 3 s) and a first re-push
    step of 1 s: the fan-out outlasts it. Four devices' first push is throttled (429) and
    comes due again with the re-pushes of the devices pushed first: it still goes first."""
    devices = [f"D{n:03}" for n in range(300)]
    await enroll(storage, *devices)
    throttled, rest = devices[:4], devices[4:]
    now = datetime.now(UTC)
    await queue(storage, "CMD-EARLY", throttled, now - timedelta(seconds=2))
    await queue(storage, "CMD-ALL", rest, now)
    for device in throttled:
        peer.behaviour.throttled[token_of(device).hex()] = 2  # both of the sender's tries
    peer.behaviour.delay = 0.2
    accepted: list[str] = []  # tokens, in the order the peer accepted them

    def record(push: Push) -> None:
        accepted.append(push.token)

    peer.forward = record
    sender = make_sender(peer, identity, tmp_path, concurrency=20, retries=1)
    pusher = pusher_for(storage, sender, Clock(), schedule=(1, 3600), batch=20, workers=2)
    pusher.clock = lambda: datetime.now(UTC)  # real seconds: the peer's delay is real
    try:
        await pusher.drain()
    finally:
        await sender.close()
    await asyncio.sleep(0)  # forwarding runs on the next loop turn
    seen: Counter[str] = Counter()
    firsts, seconds = [], []
    for n, token in enumerate(accepted):
        seen[token] += 1
        (firsts if seen[token] == 1 else seconds).append(n)
    assert set(seen) == {token_of(d).hex() for d in devices}  # every device was pushed
    assert seconds, "the fan-out did not outlast the first re-push step"
    assert max(firsts) < min(seconds)  # every first push before any second
    assert max(peer.tally.accepted.values()) == 2  # the next step is an hour away
    assert sum(peer.tally.refused.values()) == 8  # the throttled ones' tries


async def test_a_push_not_sent_before_its_lease_ends_is_not_counted_as_pushed(
    storage: SqlStorage, peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    """One push at a time; the first takes the whole lease (60 s). The rest of the batch is
    not sent by that pusher, and not reported: due again as first pushes, pushed once."""
    clock = Clock()
    devices = ["A", "B", "C", "D"]
    await enroll(storage, *devices)
    await queue(storage, "CMD-1", devices, clock())

    def slow(push: Push) -> None:
        clock.advance(61)
        peer.forward = None

    peer.forward = slow
    sender = make_sender(peer, identity, tmp_path, concurrency=1, retries=1)
    try:
        pusher = pusher_for(storage, sender, clock, batch=10, workers=1)
        assert await pusher.run_once() == 4  # claimed four, pushed one
        assert sum(peer.tally.accepted.values()) == 1
        counts = await storage.command_counts("CMD-1", clock())
        assert (counts["pushed"], counts["queued"]) == (1, 3)
        pushed = {d for d in devices if peer.tally.accepted[token_of(d).hex()]}
        # Another pusher: the three are due (their lease is over) and go before any re-push.
        other = pusher_for(storage, sender, clock, batch=10, workers=1)
        assert await other.drain() == 3
    finally:
        await sender.close()
    assert all(peer.tally.accepted[token_of(d).hex()] == 1 for d in devices)
    (first,) = pushed
    enrollment = await storage.get_enrollment(first)
    assert enrollment is not None
    # Its own push's time (after the 61 s it took), not the claim's.
    assert enrollment.pushed_at == START + timedelta(seconds=61)


async def _bulk_enroll(url: str, devices: list[str]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "device_id": device,
            "topic": "com.apple.mgmt.t",
            "identity_sha256": "0" * 64,
            "enrolled": True,
            "token": token_of(device),
            "push_magic": f"M-{device}",
            "authenticated_at": now,
            "enrolled_at": now,
        }
        for device in devices
    ]
    storage = await open_storage(url)
    try:
        await storage.database.write(lambda conn: conn.execute(insert(enrollments), rows))
        await queue(storage, "CMD-ALL", devices, now)
    finally:
        await storage.close()


async def test_two_pusher_processes_push_each_device_once(
    backend: str, peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    """Two processes claim from one database at once (a slowed peer keeps both busy): each
    device pushed once, and both did part of it."""
    devices = [f"P{n:04}" for n in range(2000)]
    peer.behaviour.delay = 0.05
    ca_file = peer.write_ca(tmp_path)
    async with fresh_database(backend, tmp_path) as url:
        await _bulk_enroll(url, devices)
        command = [
            sys.executable, "-m", "tests.push.pusher_process", url, peer.url, str(ca_file),
            str(identity.cert_file), str(identity.key_file), "--topic", identity.topic,
            "--batch", "100", "--concurrency", "50",
        ]  # fmt: skip
        pushers = [
            await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        for process in pushers:
            assert process.stdout is not None
            assert (await process.stdout.readline()).strip() == b"ready"
        outputs = await asyncio.gather(*(p.communicate(b"go\n") for p in pushers))
    assert [p.returncode for p in pushers] == [0, 0]
    claimed = [json.loads(out.splitlines()[-1])["claimed"] for out, _ in outputs]
    assert sum(claimed) == len(devices)
    assert min(claimed) > 0  # both took part
    assert len(peer.tally.accepted) == len(devices)
    assert set(peer.tally.accepted.values()) == {1}
