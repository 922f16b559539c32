"""The pusher on every backend, against the local APNs peer: coalescing, the re-push
schedule, dead tokens, failures that lose nothing, and a crash mid-fan-out."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchardist.push.pusher import Pusher, PushSettings
from orchardist.push.sender import ApnsSender
from orchardist.simulator.apns_peer import ApnsPeer, Push
from orchardist.storage import DeviceFacts, NewCommand, TargetStatus
from orchardist.storage.sql.repositories import SqlStorage
from tests.push.conftest import make_sender
from tests.push.identity import PushIdentity

pytestmark = pytest.mark.anyio

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SCHEDULE = (60, 300, 1800, 3600)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def token_of(device: str) -> bytes:
    return hashlib.sha256(device.encode()).digest()


async def enroll(storage: SqlStorage, *devices: str) -> None:
    for device in devices:
        await storage.authenticate(DeviceFacts(device, "com.apple.mgmt.t"), "a" * 64, START)
        await storage.token_update(
            device, token=token_of(device), push_magic=f"M-{device}", unlock_token=None, now=START
        )


async def queue(storage: SqlStorage, uuid: str, devices: list[str], now: datetime) -> None:
    command = NewCommand(uuid, "DeviceInformation", f"<plist>{uuid}</plist>".encode())
    await storage.enqueue(command, devices, now)


@pytest.fixture
async def sender(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> AsyncIterator[ApnsSender]:
    made = make_sender(peer, identity, tmp_path, retries=1)
    yield made
    await made.close()


def pusher_for(storage: SqlStorage, sender: ApnsSender, clock: Clock, **changes: object) -> Pusher:
    async def senders() -> ApnsSender:
        return sender

    settings = PushSettings(apns_url="unused", ca_file=None, schedule=SCHEDULE)
    for name, value in changes.items():
        object.__setattr__(settings, name, value)
    return Pusher(storage, senders, settings, clock=clock)


def pushes_by_token(peer: ApnsPeer) -> Callable[[str], int]:
    return lambda device: peer.tally.accepted[token_of(device).hex()]


async def test_many_commands_for_a_device_make_one_push(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    await enroll(storage, "A", "B")
    for n in range(3):
        await queue(storage, f"CMD-{n}", ["A", "B"], clock())
    delivered: list[Push] = []
    peer.forward = delivered.append
    assert await pusher_for(storage, sender, clock).drain() == 2
    pushes = pushes_by_token(peer)
    assert (pushes("A"), pushes("B")) == (1, 1)
    await asyncio.sleep(0)  # forwarding runs on the next loop turn
    assert sorted(p.magic for p in delivered) == ["M-A", "M-B"]
    counts = await storage.command_counts("CMD-0", clock())
    assert (counts["pushed"], counts["queued"]) == (2, 0)
    assert (await storage.get_enrollment("A")).pushed_at == START  # type: ignore[union-attr]


async def test_pending_devices_are_pushed_again_on_the_schedule(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    await enroll(storage, "A")
    await queue(storage, "CMD-1", ["A"], clock())
    pusher = pusher_for(storage, sender, clock)
    pushes = pushes_by_token(peer)
    await pusher.drain()
    seen = [pushes("A")]
    for wait in (59, 2, 299, 2, 1799, 2, 3599, 2, 3601):
        clock.advance(wait)
        await pusher.drain()
        seen.append(pushes("A"))
    # Pushed at 0, then 1 min, 5 min, 30 min later, then hourly; never before time.
    assert seen == [1, 1, 2, 2, 3, 3, 4, 4, 5, 6]
    # The device checks in and answers: at the next due time the job is simply dropped.
    exchange = await storage.exchange("A", None, clock())
    assert exchange.next_command is not None
    await storage.exchange("A", ("CMD-1", TargetStatus.ACKNOWLEDGED, b"<plist/>"), clock())
    clock.advance(3601)
    assert await pusher.drain() == 0
    assert pushes("A") == 6
    assert await storage.push_backlog(clock()) == 0


async def test_a_new_command_resets_the_schedule(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    await enroll(storage, "A")
    await queue(storage, "CMD-1", ["A"], clock())
    pusher = pusher_for(storage, sender, clock)
    await pusher.drain()
    clock.advance(10)
    await queue(storage, "CMD-2", ["A"], clock())  # due now, not in 50 seconds
    await pusher.drain()
    assert pushes_by_token(peer)("A") == 2


async def test_410_marks_the_token_invalid_until_the_next_token_update(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    await enroll(storage, "A")
    peer.behaviour.unregistered.add(token_of("A").hex())
    await queue(storage, "CMD-1", ["A"], clock())
    pusher = pusher_for(storage, sender, clock)
    await pusher.drain()
    enrollment = await storage.get_enrollment("A")
    assert enrollment is not None
    assert enrollment.token_invalid_at == START
    requests = peer.tally.requests
    await queue(storage, "CMD-2", ["A"], clock())
    clock.advance(4000)
    await pusher.drain()
    assert peer.tally.requests == requests  # no more pushes to a dead token
    # The commands are still there for the device.
    assert (await storage.command_counts("CMD-1", clock()))["queued"] == 1
    peer.behaviour.unregistered.clear()
    await storage.token_update("A", token=token_of("A"), push_magic="M-A", unlock_token=None,
                               now=clock())  # fmt: skip
    await storage.request_push(["A"], clock())
    await pusher.drain()
    assert pushes_by_token(peer)("A") == 1


async def test_a_failed_push_loses_no_command_and_is_retried(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    await enroll(storage, "A")
    await queue(storage, "CMD-1", ["A"], clock())
    peer.behaviour.failures[500] = 2  # more than the sender's one retry
    pusher = pusher_for(storage, sender, clock)
    await pusher.drain()
    assert pushes_by_token(peer)("A") == 0
    assert (await storage.command_counts("CMD-1", clock()))["queued"] == 1
    clock.advance(30)
    assert await pusher.drain() == 0  # not before the first step of the schedule
    clock.advance(31)
    await pusher.drain()
    assert pushes_by_token(peer)("A") == 1


async def test_a_push_by_hand_goes_out_with_nothing_pending(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    await enroll(storage, "A")
    pusher = pusher_for(storage, sender, clock)
    assert await pusher.drain() == 0
    await storage.request_push(["A", "A"], clock())
    assert await pusher.drain() == 1
    clock.advance(3600)
    assert await pusher.drain() == 0  # nothing pending: not pushed again
    assert pushes_by_token(peer)("A") == 1


async def test_a_pusher_killed_mid_fan_out_is_resumed_without_duplicates(
    storage: SqlStorage, sender: ApnsSender, peer: ApnsPeer
) -> None:
    clock = Clock()
    devices = [f"D{n:03}" for n in range(200)]
    await enroll(storage, *devices)
    await queue(storage, "CMD-ALL", devices, clock())
    first = pusher_for(storage, sender, clock, batch=20, workers=2)
    halfway = asyncio.Event()

    def forward(push: Push) -> None:
        if sum(peer.tally.accepted.values()) >= 70:
            halfway.set()

    peer.forward = forward
    killed = asyncio.ensure_future(first.drain())
    await halfway.wait()
    killed.cancel()  # as if the process died: its claims are never finished
    with pytest.raises(asyncio.CancelledError):
        await killed
    peer.forward = None
    before = dict(peer.tally.accepted)
    assert 0 < len(before) < 200
    # Another pusher takes over; the dead one's claims come due when their lease ends.
    second = pusher_for(storage, sender, clock, batch=20, workers=2)
    await second.drain()
    clock.advance(61)  # the lease (60 s) is over; the re-push schedule (60 s) too
    await second.drain()
    pushes = pushes_by_token(peer)
    assert all(pushes(d) >= 1 for d in devices)  # every device was pushed
    assert max(pushes(d) for d in devices) <= 2  # at most one retry each
    counts = await storage.command_counts("CMD-ALL", clock())
    assert counts["pushed"] == 200
