"""The delivery queue: retries along the schedule while a receiver is down or failing,
delivery once it is back, giving up after the limit, and a crashed sender's claims
coming due after the lease. Real HTTP to 127.0.0.1; storage on every backend."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage.sql.repositories import SqlStorage
from orchardist.webhooks.events import WebhookEmitter, checkin_event
from orchardist.webhooks.sender import WebhookSender, WebhookSettings
from tests.webhooks.receiver import receiving

pytestmark = pytest.mark.anyio
SETTINGS = WebhookSettings(
    schedule=(10, 60), give_up_after=timedelta(minutes=10), lease=timedelta(seconds=30)
)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 30, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _emit(storage: SqlStorage, urls: list[str], clock: Clock, udid: str) -> None:
    emitter = WebhookEmitter(storage, urls, clock)
    await emitter.emit(lambda at: [checkin_event("Authenticate", udid, b"<plist/>", at)])


async def test_a_receiver_that_is_down_gets_the_event_when_it_is_back(
    storage: SqlStorage,
) -> None:
    clock, port = Clock(), _free_port()
    down_url = f"http://127.0.0.1:{port}/hooks/mdm"
    with receiving() as up:
        await _emit(storage, [up.url, down_url], clock, "UDID-1")
        sender = WebhookSender(storage, SETTINGS, clock=clock)
        try:
            assert await sender.drain() == 2
            assert len(up.received) == 1  # the live one has it; the other waits
            assert await storage.webhook_backlog() == {"pending": 1, "given_up": 0}
            clock.now += timedelta(seconds=7)  # the first retry is 10 s ± 20 % away
            assert await sender.drain() == 0
            clock.now += timedelta(seconds=6)
            assert await sender.drain() == 1  # tried again, still down
            clock.now += timedelta(seconds=40)
            assert await sender.drain() == 0  # now 60 s ± 20 % away
            with receiving(port) as back:
                clock.now += timedelta(seconds=40)
                assert await sender.drain() == 1
            assert [r.body for r in back.received] == [r.body for r in up.received]
            assert await storage.webhook_backlog() == {"pending": 0, "given_up": 0}
        finally:
            await sender.close()


async def test_error_statuses_are_retried_until_a_2xx(storage: SqlStorage) -> None:
    clock = Clock()
    with receiving() as flaky:
        flaky.answers = [500, 503, 404]
        await _emit(storage, [flaky.url], clock, "UDID-2")
        sender = WebhookSender(storage, SETTINGS, clock=clock)
        try:
            for _ in range(4):
                await sender.drain()
                clock.now += timedelta(seconds=75)
        finally:
            await sender.close()
    assert len(flaky.received) == 4
    assert len({r.headers["X-Orchardist-Event-Id"] for r in flaky.received}) == 1
    assert await storage.webhook_backlog() == {"pending": 0, "given_up": 0}


async def test_an_event_is_given_up_after_the_limit(storage: SqlStorage) -> None:
    clock, port = Clock(), _free_port()
    await _emit(storage, [f"http://127.0.0.1:{port}/gone"], clock, "UDID-3")
    sender = WebhookSender(storage, SETTINGS, clock=clock)
    try:
        for _ in range(12):
            await sender.drain()
            clock.now += timedelta(seconds=75)
    finally:
        await sender.close()
    assert await storage.webhook_backlog() == {"pending": 0, "given_up": 1}
    clock.now += timedelta(days=1)
    assert await storage.claim_webhook_deliveries(clock.now, timedelta(seconds=30), 10) == []


async def test_a_crashed_senders_claim_comes_due_after_the_lease(storage: SqlStorage) -> None:
    clock = Clock()
    with receiving() as receiver:
        await _emit(storage, [receiver.url], clock, "UDID-4")
        claimed = await storage.claim_webhook_deliveries(clock.now, SETTINGS.lease, 10)
        assert len(claimed) == 1  # … and the process that claimed it dies here
        sender = WebhookSender(storage, SETTINGS, clock=clock)
        try:
            assert await sender.drain() == 0  # still leased
            clock.now += SETTINGS.lease
            assert await sender.drain() == 1
        finally:
            await sender.close()
    assert len(receiver.received) == 1
    assert await storage.webhook_backlog() == {"pending": 0, "given_up": 0}
