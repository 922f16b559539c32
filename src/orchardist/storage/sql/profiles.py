"""The profile library on SQL (see `orchardist.storage.profiles` for the contracts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchardist.keys.master import MasterKeys
from orchardist.storage import NewCommand
from orchardist.storage.profiles import (
    Assignment,
    DevicePlan,
    DeviceProfile,
    ProfileState,
    ProfileVersion,
    StoredProfile,
    TargetKind,
)
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.mdm import insert_command
from orchardist.storage.sql.sealing import place, unseal
from orchardist.storage.sql.tables import (
    device_groups,
    device_profiles,
    enrollments,
    issued_certificates,
    profile_assignments,
    profile_versions,
    profiles,
)
from orchardist.storage.sql.upsert import dialect_insert

_versions, _assignments, _states = profile_versions, profile_assignments, device_profiles


class SqlProfileStorage:
    database: Database
    keys: MasterKeys  # profile bodies are sealed: they may hold Wi-Fi, VPN, mail passwords

    async def add_profile_version(
        self,
        identifier: str,
        display_name: str,
        payload_types: Sequence[str],
        body: bytes,
        now: datetime,
    ) -> ProfileVersion:
        def work(conn: Connection) -> ProfileVersion:
            where = profiles.c.identifier == identifier
            current = conn.execute(select(profiles.c.latest_version).where(where)).scalar()
            version = 1 if current is None else int(current) + 1
            values = {"display_name": display_name, "latest_version": version,
                      "updated_at": now, "deleted_at": None}  # fmt: skip
            if current is None:
                conn.execute(
                    insert(profiles), {"identifier": identifier, "created_at": now, **values}
                )
            else:
                conn.execute(update(profiles).where(where).values(values))
            record = ProfileVersion(
                identifier, version, display_name, tuple(payload_types), body, now
            )
            sealed, key = self.keys.seal(
                body, place("profile_versions", "body", identifier, version)
            )
            row = {**asdict(record), "payload_types": list(payload_types)}
            conn.execute(insert(_versions), {**row, "body": sealed, "body_key": key})
            return record

        return await self.database.write(work)

    async def list_profiles(self) -> list[StoredProfile]:
        query = (
            select(profiles).where(profiles.c.deleted_at.is_(None)).order_by(profiles.c.identifier)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_profile(row) for row in rows]

    async def get_profile(self, identifier: str) -> StoredProfile | None:
        query = select(profiles).where(
            and_(profiles.c.identifier == identifier, profiles.c.deleted_at.is_(None))
        )
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _profile(row)

    async def profile_version(
        self, identifier: str, version: int | None = None
    ) -> ProfileVersion | None:
        query = select(_versions).where(_versions.c.identifier == identifier)
        if version is None:
            query = query.order_by(_versions.c.version.desc()).limit(1)
        else:
            query = query.where(_versions.c.version == version)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _version(row, self.keys)

    async def profile_versions(self, identifier: str) -> list[ProfileVersion]:
        query = (
            select(_versions)
            .where(_versions.c.identifier == identifier)
            .order_by(_versions.c.version)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_version(row, self.keys) for row in rows]

    async def delete_profile(self, identifier: str) -> bool:
        def work(conn: Connection) -> bool:
            conn.execute(delete(_assignments).where(_assignments.c.identifier == identifier))
            hide = update(profiles).where(
                and_(profiles.c.identifier == identifier, profiles.c.deleted_at.is_(None))
            )
            return bool(conn.execute(hide.values(deleted_at=profiles.c.updated_at)).rowcount)

        return await self.database.write(work)

    async def set_assignments(
        self, identifier: str, kind: TargetKind, targets: Sequence[str], *, assigned: bool
    ) -> None:
        rows = [{"identifier": identifier, "kind": kind.value, "target": t} for t in targets]

        def work(conn: Connection) -> None:
            if not rows:
                return
            if assigned:
                dialect = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                conn.execute(dialect(_assignments).on_conflict_do_nothing(), rows)
                return
            for row in rows:
                conn.execute(
                    delete(_assignments).where(
                        and_(*(getattr(_assignments.c, k) == v for k, v in row.items()))
                    )
                )

        await self.database.write(work)

    async def assignments(self, identifier: str | None = None) -> list[Assignment]:
        query = select(_assignments).order_by(
            _assignments.c.identifier, _assignments.c.kind, _assignments.c.target
        )
        if identifier is not None:
            query = query.where(_assignments.c.identifier == identifier)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [Assignment(r.identifier, TargetKind(r.kind), r.target) for r in rows]

    async def set_group(self, name: str, device_ids: Sequence[str]) -> None:
        members = [{"name": name, "device_id": d} for d in dict.fromkeys(device_ids)]

        def work(conn: Connection) -> None:
            conn.execute(delete(device_groups).where(device_groups.c.name == name))
            if members:
                conn.execute(insert(device_groups), members)

        await self.database.write(work)

    async def add_to_groups(self, device_id: str, names: Sequence[str]) -> None:
        rows = [{"name": name, "device_id": device_id} for name in dict.fromkeys(names)]

        def work(conn: Connection) -> None:
            if rows:
                dialect = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                conn.execute(dialect(device_groups).on_conflict_do_nothing(), rows)

        await self.database.write(work)

    async def groups(self) -> Mapping[str, list[str]]:
        query = select(device_groups).order_by(device_groups.c.name, device_groups.c.device_id)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.name, []).append(row.device_id)
        return found

    async def group_sizes(self) -> Mapping[str, int]:
        name = device_groups.c.name
        query = select(name, func.count()).group_by(name).order_by(name)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return {row[0]: row[1] for row in rows}

    async def groups_of(self, device_id: str) -> list[str]:
        query = (
            select(device_groups.c.name)
            .where(device_groups.c.device_id == device_id)
            .order_by(device_groups.c.name)
        )
        return list(await self.database.read(lambda conn: conn.execute(query).scalars().all()))

    async def device_profiles(
        self, *, device_id: str | None = None, identifier: str | None = None
    ) -> list[DeviceProfile]:
        query = select(_states).order_by(_states.c.identifier, _states.c.device_id)
        if device_id is not None:
            query = query.where(_states.c.device_id == device_id)
        if identifier is not None:
            query = query.where(_states.c.identifier == identifier)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_state(row) for row in rows]

    async def save_device_profiles(self, rows: Sequence[DeviceProfile]) -> None:
        values = [{**asdict(r), "state": r.state.value} for r in rows]

        def work(conn: Connection) -> None:
            if not values:
                return
            dialect = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = dialect(_states)
            changed = {
                key: getattr(statement.excluded, key)
                for key in values[0]
                if key not in ("device_id", "identifier")
            }
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["device_id", "identifier"], set_=changed
                ),
                values,
            )

        await self.database.write(work)

    async def queue_profile_command(
        self,
        command: NewCommand,
        rows: Sequence[DeviceProfile],
        seen: Mapping[str, str | None],
        now: datetime,
    ) -> list[DeviceProfile]:
        def work(conn: Connection) -> list[DeviceProfile]:
            saved = [row for row in rows if _save_if_unchanged(conn, row, seen[row.device_id])]
            if saved:
                insert_command(conn, self.keys, command, [r.device_id for r in saved], now)
            return saved

        return await self.database.write(work)

    async def device_plan(self, device_id: str) -> DevicePlan:
        return await self.database.read(lambda conn: _device_plan(conn, device_id))

    async def device_profile_by_command(
        self, device_id: str, command_uuid: str
    ) -> DeviceProfile | None:
        query = select(_states).where(
            and_(_states.c.device_id == device_id, _states.c.command_uuid == command_uuid)
        )
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _state(row)


def _save_if_unchanged(conn: Connection, row: DeviceProfile, seen: str | None) -> bool:
    """Upsert the row unless the stored one has moved to another command than `seen` since
    it was read: a compare-and-set, so two passes at once queue once. PostgreSQL evaluates
    the condition on the row as committed by a concurrent pass (ON CONFLICT locks it)."""
    values = {**asdict(row), "state": row.state.value}
    statement = dialect_insert(conn, _states).values(values)
    changed = {k: statement.excluded[k] for k in values if k not in ("device_id", "identifier")}
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "identifier"],
        set_=changed,
        where=_states.c.command_uuid.is_not_distinct_from(seen),
    )
    return bool(conn.execute(statement).rowcount)


def _device_plan(conn: Connection, device_id: str) -> DevicePlan:
    e, c = enrollments, issued_certificates
    identity = conn.execute(
        select(e.c.enrolled, c.c.der)
        .select_from(e.outerjoin(c, c.c.sha256 == e.c.identity_sha256))
        .where(e.c.device_id == device_id)
    ).first()
    states = _states.select().where(_states.c.device_id == device_id)
    rows = [_state(row) for row in conn.execute(states.order_by(_states.c.identifier))]
    enrolled = identity is not None and bool(identity.enrolled)
    wanted: dict[str, int] = {}
    if enrolled:
        a, p = _assignments.c, profiles.c
        its_groups = select(device_groups.c.name).where(device_groups.c.device_id == device_id)
        reaching = or_(
            a.kind == TargetKind.ALL.value,
            and_(a.kind == TargetKind.DEVICE.value, a.target == device_id),
            and_(a.kind == TargetKind.GROUP.value, a.target.in_(its_groups)),
        )
        query = (
            select(p.identifier, p.latest_version)
            .join(_assignments, a.identifier == p.identifier)
            .where(p.deleted_at.is_(None), reaching)
            .distinct()
            .order_by(p.identifier)
        )
        wanted = {row.identifier: row.latest_version for row in conn.execute(query)}
    der = None if identity is None or identity.der is None else bytes(identity.der)
    return DevicePlan(enrolled, wanted, rows, der)


def _profile(row: Row[Any]) -> StoredProfile:
    return StoredProfile(
        row.identifier, row.display_name, row.latest_version, row.created_at, row.updated_at
    )


def _version(row: Row[Any], keys: MasterKeys) -> ProfileVersion:
    where = place("profile_versions", "body", row.identifier, row.version)
    return ProfileVersion(
        row.identifier,
        row.version,
        row.display_name,
        tuple(row.payload_types),
        unseal(keys, row.body, row.body_key, where) or b"",
        row.created_at,
    )


def _state(row: Row[Any]) -> DeviceProfile:
    return DeviceProfile(
        device_id=row.device_id,
        identifier=row.identifier,
        desired_version=row.desired_version,
        installed_version=row.installed_version,
        state=ProfileState(row.state),
        command_uuid=row.command_uuid,
        error=row.error,
        updated_at=row.updated_at,
    )
