"""What /metrics reads from storage: the queue depth and the connection pool, on every
backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import DeviceFacts, NewCommand, TargetStatus
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _enrolled(storage: SqlStorage, *devices: str) -> None:
    for device in devices:
        await storage.authenticate(DeviceFacts(device, "com.apple.mgmt.t"), "a" * 64, NOW)
        await storage.token_update(device, token=b"t", push_magic="M", unlock_token=None, now=NOW)


def _command(uuid: str, expires_at: datetime | None = None) -> NewCommand:
    return NewCommand(uuid, "DeviceInformation", b"<plist/>", expires_at=expires_at)


async def test_queue_depth_counts_what_still_waits_for_a_device(storage: SqlStorage) -> None:
    assert await storage.queue_depth(NOW) == {"queued": 0, "sent": 0, "not_now": 0}
    await _enrolled(storage, "A", "B", "C")
    await storage.enqueue(_command("CMD-1"), ["A", "B", "C"], NOW)
    await storage.enqueue(_command("CMD-2", NOW + timedelta(hours=1)), ["A"], NOW)
    await storage.enqueue(_command("GONE", NOW - timedelta(minutes=1)), ["C"], NOW)
    for device in ("A", "B", "C"):
        sent = await storage.exchange(device, None, NOW)
        assert sent.next_command is not None
        assert sent.next_command[0] == "CMD-1"
    await storage.exchange("B", ("CMD-1", TargetStatus.NOT_NOW, b"<plist/>"), NOW)
    await storage.exchange("C", ("CMD-1", TargetStatus.ACKNOWLEDGED, b"<plist/>"), NOW)
    # A: CMD-1 sent, CMD-2 queued; B: CMD-1 not now; C: answered, and GONE expired.
    assert await storage.queue_depth(NOW) == {"queued": 1, "sent": 1, "not_now": 1}
    later = NOW + timedelta(hours=2)  # CMD-2 has expired too
    assert await storage.queue_depth(later) == {"queued": 0, "sent": 1, "not_now": 1}


async def test_pool_usage_sees_a_connection_in_use(storage: SqlStorage) -> None:
    idle = storage.pool_usage()
    assert idle.size >= 1
    assert idle.checked_out == 0
    busy = await storage.database.read(lambda conn: storage.pool_usage())
    assert busy.checked_out == 1
