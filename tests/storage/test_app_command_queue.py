"""AppStore.queue_app_command on every SQL backend, as the app library's reconciliation uses
it for RemoveApplication: the rows moved to removing and the command queued in one
transaction (a failure between the two leaves neither), and, given the command each row
named when read, a compare-and-set, so two passes at once queue one RemoveApplication."""

from __future__ import annotations

import asyncio
import plistlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from orchardist.storage import NewCommand
from orchardist.storage.apps import AppState, DeviceApp
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.device_apps import device_app

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BUNDLE = "com.example.sales"


def removal(uuid: str) -> NewCommand:
    body = {"CommandUUID": uuid, "Command": {"RequestType": "RemoveApplication",
                                             "Identifier": BUNDLE}}  # fmt: skip
    return NewCommand(uuid, "RemoveApplication", plistlib.dumps(body))


def removing(rows: list[DeviceApp], uuid: str) -> list[DeviceApp]:
    return [replace(r, state=AppState.REMOVING, desired_version_id=None, command_uuid=uuid,
                    updated_at=NOW) for r in rows]  # fmt: skip


async def held(storage: SqlStorage) -> list[DeviceApp]:
    """Two devices holding the app: one managed, one with an install in flight."""
    rows = [device_app("U1", state=AppState.MANAGED),
            device_app("U2", state=AppState.QUEUED, command_uuid="C-INSTALL")]  # fmt: skip
    await storage.save_device_apps(rows)
    return rows


async def removals(storage: SqlStorage) -> dict[str, list[str]]:
    """RemoveApplication UUID -> the devices it is queued for."""
    query = text(
        "SELECT c.command_uuid, t.device_id FROM commands c"
        " LEFT JOIN command_targets t ON t.command_uuid = c.command_uuid"
        " WHERE c.request_type = 'RemoveApplication' ORDER BY t.device_id"
    )
    rows = await storage.database.read(lambda conn: conn.execute(query).all())
    found: dict[str, list[str]] = {}
    for uuid, device in rows:
        found.setdefault(str(uuid), []).extend([] if device is None else [str(device)])
    return found


async def test_a_removal_is_recorded_with_its_command_or_not_at_all(storage: SqlStorage) -> None:
    rows = await held(storage)
    seen = {r.device_id: r.command_uuid for r in rows}
    # The command's write fails after the rows' (its UUID is taken): the rows' is undone.
    await storage.enqueue(removal("C-TAKEN"), ["U9"], NOW)
    with pytest.raises(IntegrityError):
        await storage.queue_app_command(removal("C-TAKEN"), removing(rows, "C-TAKEN"), NOW,
                                        seen=seen)  # fmt: skip
    assert await storage.device_apps(bundle_id=BUNDLE) == rows
    assert await removals(storage) == {"C-TAKEN": ["U9"]}
    # Done again, it goes through whole: both rows naming the command queued for both.
    saved = await storage.queue_app_command(removal("C-1"), removing(rows, "C-1"), NOW, seen=seen)
    assert saved == removing(rows, "C-1")
    assert await storage.device_apps(bundle_id=BUNDLE) == saved
    assert await removals(storage) == {"C-TAKEN": ["U9"], "C-1": ["U1", "U2"]}


async def test_two_passes_at_once_queue_one_removal(storage: SqlStorage) -> None:
    rows = await held(storage)
    seen = {r.device_id: r.command_uuid for r in rows}  # what both passes read
    passes = await asyncio.gather(
        *(storage.queue_app_command(removal(uuid), removing(rows, uuid), NOW, seen=seen)
          for uuid in ("C-A", "C-B"))
    )  # fmt: skip
    assert sorted(len(saved) for saved in passes) == [0, 2]
    (winner,) = [saved[0].command_uuid for saved in passes if saved]
    assert await removals(storage) == {winner: ["U1", "U2"]}  # the other was never queued
    assert await storage.device_apps(bundle_id=BUNDLE) == removing(rows, winner)
    # A pass that read the rows before that one moved them leaves them alone too.
    assert await storage.queue_app_command(removal("C-C"), removing(rows, "C-C"), NOW,
                                           seen=seen) == []  # fmt: skip
    assert await removals(storage) == {winner: ["U1", "U2"]}
