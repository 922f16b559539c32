"""Recent commands with their counts, and cancelling a command, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchardist.storage import NewCommand, TargetStatus
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio
MINUTE = timedelta(minutes=1)


def _command(uuid: str, request_type: str = "DeviceLock") -> NewCommand:
    return NewCommand(uuid, request_type, b"<plist/>")


async def test_recent_commands_page_newest_first_with_counts(storage: SqlStorage) -> None:
    for device in ("A", "B"):
        await add_device(storage, Spec(device))
    for n in range(5):
        await storage.enqueue(_command(f"CMD-{n}"), ["A", "B"], NOW + n * MINUTE)
    await storage.exchange("A", None, NOW + 10 * MINUTE)  # CMD-0 sent to A
    await storage.exchange("A", ("CMD-0", TargetStatus.ACKNOWLEDGED, b"<plist/>"), NOW)
    first = await storage.recent_commands(NOW + 10 * MINUTE, limit=3)
    assert [c.command_uuid for c in first] == ["CMD-4", "CMD-3", "CMD-2"]
    last = first[-1]
    rest = await storage.recent_commands(NOW, limit=3, before=(last.created_at, last.command_uuid))
    assert [c.command_uuid for c in rest] == ["CMD-1", "CMD-0"]
    oldest = rest[-1]
    assert (oldest.request_type, oldest.counts["acknowledged"], oldest.counts["queued"]) == (
        "DeviceLock", 1, 1)  # fmt: skip
    assert oldest.counts == await storage.command_counts("CMD-0", NOW)
    assert (rest[0].counts["sent"], rest[0].counts["queued"]) == (1, 1)  # offered to A next


async def test_cancel_stops_what_no_device_ran(storage: SqlStorage) -> None:
    for device in ("A", "B", "C"):
        await add_device(storage, Spec(device))
    await storage.enqueue(_command("LOCK"), ["A", "B", "C"], NOW)
    await storage.exchange("A", None, NOW)
    await storage.exchange("A", ("LOCK", TargetStatus.ACKNOWLEDGED, b"<plist/>"), NOW)
    await storage.exchange("B", None, NOW)  # sent to B, not answered
    assert await storage.cancel_command("LOCK", NOW) == 2
    assert await storage.cancel_command("LOCK", NOW) == 0
    counts = await storage.command_counts("LOCK", NOW)
    assert (counts["acknowledged"], counts["cancelled"], counts["sent"]) == (1, 2, 0)
    assert (await storage.exchange("B", None, NOW)).next_command is None
    assert (await storage.exchange("C", None, NOW)).next_command is None
    assert await storage.cancel_command("NO-SUCH", NOW) == 0
