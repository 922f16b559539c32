"""Provisioning profiles on SQL (see `orchardist.storage.provisioning` for the contracts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, or_, select, union, update
from sqlalchemy.engine import Connection

from orchardist.keys.master import MasterKeys
from orchardist.storage import NewCommand
from orchardist.storage.profiles import Assignment, TargetKind
from orchardist.storage.provisioning import (
    PROVISIONING_MAX_BYTES,
    DeviceProvisioning,
    ProvisioningState,
    StoredProvisioningProfile,
)
from orchardist.storage.sql.assignments import change_assignments, read_assignments
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.device_states import by_command, matching, state_counts
from orchardist.storage.sql.mdm import insert_command
from orchardist.storage.sql.tables import (
    device_provisioning,
    inventory_provisioning_profiles,
    provisioning_assignments,
    provisioning_profiles,
)
from orchardist.storage.sql.upsert import dialect_insert, upsert

_profiles, _states = provisioning_profiles, device_provisioning


# Plain SQL for `fetch_row`: an enrollment asks, and most fleets assign none.
_CONCERN = (
    "SELECT EXISTS (SELECT 1 FROM provisioning_assignments)"
    " OR EXISTS (SELECT 1 FROM device_provisioning WHERE device_id = $1)"
)


class SqlProvisioningStorage:
    database: Database
    keys: MasterKeys

    async def add_provisioning_profile(self, profile: StoredProvisioningProfile) -> bool:
        if len(profile.body) > PROVISIONING_MAX_BYTES:
            raise ValueError(
                f"the provisioning profile takes {len(profile.body)} bytes, "
                f"over {PROVISIONING_MAX_BYTES}"
            )
        for name, limit in (("uuid", 64), ("app_id", 255)):
            if not 0 < len(getattr(profile, name)) <= limit:
                raise ValueError(f"the provisioning profile's {name} must be 1 to {limit} long")

        def work(conn: Connection) -> bool:
            added = conn.execute(
                dialect_insert(conn, _profiles).on_conflict_do_nothing(), asdict(profile)
            )
            return bool(added.rowcount)

        return await self.database.write(work)

    async def get_provisioning_profile(self, uuid: str) -> StoredProvisioningProfile | None:
        query = select(_profiles).where(_profiles.c.uuid == uuid)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _profile(row)

    async def list_provisioning_profiles(
        self, *, app_id: str | None = None
    ) -> list[StoredProvisioningProfile]:
        query = select(_profiles).order_by(
            _profiles.c.app_id, _profiles.c.expires_at.desc(), _profiles.c.uuid
        )
        if app_id is not None:
            query = query.where(_profiles.c.app_id == app_id)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_profile(row) for row in rows]

    async def provisioning_profiles_expiring(
        self, before: datetime
    ) -> list[StoredProvisioningProfile]:
        query = (
            select(_profiles)
            .where(and_(_profiles.c.expires_at < before, _profiles.c.replaced_by.is_(None)))
            .order_by(_profiles.c.expires_at, _profiles.c.uuid)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_profile(row) for row in rows]

    async def mark_provisioning_replaced(self, uuid: str, replaced_by: str | None) -> bool:
        change = update(_profiles).where(_profiles.c.uuid == uuid).values(replaced_by=replaced_by)
        return bool(await self.database.write(lambda conn: conn.execute(change).rowcount))

    async def claim_provisioning_expiry_warning(self, uuid: str, days: int) -> bool:
        warned = _profiles.c.expiry_warned_days
        change = (
            update(_profiles)
            .where(and_(_profiles.c.uuid == uuid, or_(warned.is_(None), warned > days)))
            .values(expiry_warned_days=days)
        )
        return bool(await self.database.write(lambda conn: conn.execute(change).rowcount))

    async def delete_provisioning_profile(self, uuid: str) -> bool:
        def work(conn: Connection) -> bool:
            for table in (_states, provisioning_assignments):
                conn.execute(delete(table).where(table.c.uuid == uuid))
            return bool(conn.execute(delete(_profiles).where(_profiles.c.uuid == uuid)).rowcount)

        return await self.database.write(work)

    async def set_provisioning_assignments(
        self, uuid: str, kind: TargetKind, targets: Sequence[str], *, assigned: bool
    ) -> None:
        key = provisioning_assignments.c.uuid
        await self.database.write(
            lambda conn: change_assignments(conn, key, uuid, kind, targets, assigned=assigned)
        )

    async def provisioning_assignments(self, uuid: str | None = None) -> list[Assignment]:
        key = provisioning_assignments.c.uuid
        return await self.database.read(lambda conn: read_assignments(conn, key, uuid))

    async def save_device_provisioning(self, rows: Sequence[DeviceProvisioning]) -> None:
        if rows:
            await self.database.write(lambda conn: _save_states(conn, rows))

    async def queue_provisioning_command(
        self, command: NewCommand, rows: Sequence[DeviceProvisioning], now: datetime
    ) -> None:
        def work(conn: Connection) -> None:
            _save_states(conn, rows)
            insert_command(conn, self.keys, command, [r.device_id for r in rows], now)

        if rows:
            await self.database.write(work)

    async def provisioning_concerns(self, device_id: str) -> bool:
        row = await self.database.fetch_row(_CONCERN, (device_id,))
        return bool(row and row[0])

    async def device_provisioning(
        self, *, device_id: str | None = None, uuid: str | None = None
    ) -> list[DeviceProvisioning]:
        query = matching(_states, ("uuid", "device_id"), {"device_id": device_id, "uuid": uuid})
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_state(row) for row in rows]

    async def device_provisioning_by_command(
        self, device_id: str, command_uuid: str
    ) -> DeviceProvisioning | None:
        query = by_command(_states, device_id, command_uuid)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _state(row)

    async def provisioning_state_counts(self, uuid: str) -> dict[ProvisioningState, int]:
        query = state_counts(_states, "uuid", uuid)
        found = await self.database.read(lambda conn: conn.execute(query).all())
        return {ProvisioningState(state): count for state, count in found}

    async def provisioning_holders(self, uuid: str) -> list[str]:
        listed = inventory_provisioning_profiles
        holders = union(
            select(_states.c.device_id).where(
                and_(_states.c.uuid == uuid, _states.c.state == ProvisioningState.INSTALLED)
            ),
            select(listed.c.device_id).where(listed.c.uuid == uuid),
        )
        query = select(holders.subquery().c.device_id).order_by("device_id")
        return list(await self.database.read(lambda conn: conn.execute(query).scalars().all()))


def _profile(row: Row[Any]) -> StoredProvisioningProfile:
    return StoredProvisioningProfile(**row._asdict())


def _state(row: Row[Any]) -> DeviceProvisioning:
    return DeviceProvisioning(**{**row._asdict(), "state": ProvisioningState(row.state)})


def _save_states(conn: Connection, rows: Sequence[DeviceProvisioning]) -> None:
    values = [{**asdict(r), "state": r.state.value} for r in rows]
    conn.execute(upsert(conn, _states, values[0]), values)
