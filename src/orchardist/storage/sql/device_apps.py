"""Each device's state for each in-house app, on SQL (see `orchardist.storage.apps`)."""

from __future__ import annotations

from collections.abc import Sequence
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
        values = [{**asdict(r), "state": r.state.value} for r in rows]
        if not values:
            return
        await self.database.write(lambda conn: conn.execute(upsert(conn, _rows, values[0]), values))

    async def queue_app_command(
        self, command: NewCommand, rows: Sequence[DeviceApp], now: datetime
    ) -> None:
        values = [{**asdict(r), "state": r.state.value} for r in rows]

        def work(conn: Connection) -> None:
            insert_command(conn, self.keys, command, [r.device_id for r in rows], now)
            if values:
                conn.execute(upsert(conn, _rows, values[0]), values)

        await self.database.write(work)

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


def _device_app(row: Row[Any]) -> DeviceApp:
    return DeviceApp(**{**row._asdict(), "state": AppState(row.state)})
