"""Each device's state for each in-house app, on SQL (see `orchardist.storage.apps`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.engine import Connection

from orchardist.keys.master import MasterKeys
from orchardist.storage import NewCommand
from orchardist.storage.apps import AppState, DeviceApp
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.device_states import by_command, matching, state_counts
from orchardist.storage.sql.mdm import insert_command
from orchardist.storage.sql.tables import device_apps
from orchardist.storage.sql.upsert import upsert

_rows = device_apps


# Plain SQL for `fetch_row`: an enrollment asks, and most fleets assign no app.
_CONCERN = (
    "SELECT EXISTS (SELECT 1 FROM app_assignments)"
    " OR EXISTS (SELECT 1 FROM device_apps WHERE device_id = $1)"
)


class SqlDeviceAppStorage:
    database: Database
    keys: MasterKeys

    async def save_device_apps(self, rows: Sequence[DeviceApp]) -> None:
        values = [_values(r) for r in rows]
        if not values:
            return
        await self.database.write(lambda conn: conn.execute(upsert(conn, _rows, values[0]), values))

    async def queue_app_command(
        self,
        command: NewCommand,
        rows: Sequence[DeviceApp],
        now: datetime,
        *,
        seen: Mapping[str, str | None] | None = None,
    ) -> list[DeviceApp]:
        def work(conn: Connection) -> list[DeviceApp]:
            if seen is None:
                saved = list(rows)
                values = [_values(r) for r in saved]
                if values:
                    conn.execute(upsert(conn, _rows, values[0]), values)
            else:
                saved = [r for r in rows if _save_if_unchanged(conn, r, seen[r.device_id])]
            if saved:
                insert_command(conn, self.keys, command, [r.device_id for r in saved], now)
            return saved

        return await self.database.write(work)

    async def apps_concern(self, device_id: str) -> bool:
        row = await self.database.fetch_row(_CONCERN, (device_id,))
        return bool(row and row[0])

    async def device_apps(
        self,
        *,
        device_id: str | None = None,
        bundle_id: str | None = None,
        state: AppState | None = None,
    ) -> list[DeviceApp]:
        filters = {"device_id": device_id, "bundle_id": bundle_id, "state": state}
        query = matching(_rows, ("bundle_id", "device_id"), filters)
        found = await self.database.read(lambda conn: conn.execute(query).all())
        return [_device_app(row) for row in found]

    async def device_app_by_command(self, device_id: str, command_uuid: str) -> DeviceApp | None:
        query = by_command(_rows, device_id, command_uuid)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _device_app(row)

    async def due_device_apps(
        self, now: datetime, limit: int, *, state: AppState | None = None
    ) -> list[DeviceApp]:
        query = (
            select(_rows)
            .where(_rows.c.next_attempt_at <= now)
            .order_by(_rows.c.next_attempt_at, _rows.c.device_id, _rows.c.bundle_id)
            .limit(limit)
        )
        if state is not None:
            query = query.where(_rows.c.state == state.value)
        found = await self.database.read(lambda conn: conn.execute(query).all())
        return [_device_app(row) for row in found]

    async def app_state_counts(self, bundle_id: str) -> dict[AppState, int]:
        query = state_counts(_rows, "bundle_id", bundle_id)
        found = await self.database.read(lambda conn: conn.execute(query).all())
        return {AppState(state): count for state, count in found}


def _values(row: DeviceApp) -> dict[str, Any]:
    return {**asdict(row), "state": row.state.value}


def _save_if_unchanged(conn: Connection, row: DeviceApp, seen: str | None) -> bool:
    """Upsert the row unless the stored one has moved to another command than `seen` since
    it was read (as ProfileStore.queue_profile_command does): two passes at once queue
    once. PostgreSQL evaluates the condition on the row as a concurrent pass committed it
    (ON CONFLICT locks the row)."""
    unchanged = _rows.c.command_uuid.is_not_distinct_from(seen)
    return bool(conn.execute(upsert(conn, _rows, _values(row), unchanged), _values(row)).rowcount)


def _device_app(row: Row[Any]) -> DeviceApp:
    return DeviceApp(**{**row._asdict(), "state": AppState(row.state)})
