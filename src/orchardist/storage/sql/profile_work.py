"""Reconciliation a page at a time, on SQL (see `orchardist.storage.profile_work`): the
versions a page of devices should have are computed from the assignments (to all, to the
device, to its groups) and compared with their rows by the database; only the differences
come back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, literal, not_, null, or_, select, true, union, update
from sqlalchemy.engine import Connection

from orchardist.keys.master import MasterKeys
from orchardist.storage import NewCommand
from orchardist.storage.profile_work import (
    ScheduledInstall,
    WantedInstall,
    WorkPage,
    WorkScope,
)
from orchardist.storage.profiles import DeviceProfile, ProfileState, TargetKind
from orchardist.storage.sql.among import among
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.mdm import insert_command
from orchardist.storage.sql.profiles import _state
from orchardist.storage.sql.tables import (
    device_groups,
    device_profiles,
    enrollments,
    issued_certificates,
    profile_assignments,
    profiles,
)
from orchardist.storage.sql.upsert import dialect_insert

S = ProfileState
_HOLDING = [S.PENDING.value, S.INSTALLED.value, S.FAILED.value]
_GONE = [S.REMOVING.value, S.REMOVED.value]
CHUNK = 1000  # rows a statement: 8 parameters each, under both databases' limits
a, g, p, s, e = (profile_assignments.c, device_groups.c, profiles.c, device_profiles.c,
                 enrollments.c)  # fmt: skip


class SqlProfileWorkStorage:
    database: Database
    keys: MasterKeys

    async def profile_work(self, scope: WorkScope, after: str | None, limit: int) -> WorkPage:
        return await self.database.read(lambda conn: _work_page(conn, scope, after, limit))

    async def schedule_work(
        self, scope: WorkScope, after: str | None, limit: int, now: datetime
    ) -> WorkPage:
        return await self.database.write(lambda conn: _work_page(conn, scope, after, limit, now))

    async def schedule_installs(self, rows: Sequence[DeviceProfile]) -> int:
        values = [{**asdict(row), "state": row.state.value} for row in rows]

        def work(conn: Connection) -> int:
            return sum(_schedule(conn, values[i : i + CHUNK]) for i in range(0, len(values), CHUNK))

        return await self.database.write(work) if rows else 0

    async def scheduled_installs(self, limit: int) -> list[ScheduledInstall]:
        c = issued_certificates.c
        query = (
            select(device_profiles, c.der)
            .select_from(
                device_profiles.join(enrollments, e.device_id == s.device_id).outerjoin(
                    issued_certificates, c.sha256 == e.identity_sha256
                )
            )
            .where(s.state == S.PENDING.value, s.command_uuid.is_(None), e.enrolled.is_(True))
            .order_by(s.device_id, s.identifier)
            .limit(limit)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [ScheduledInstall(_state(r), None if r.der is None else bytes(r.der)) for r in rows]

    async def deliver_scheduled(
        self, deliveries: Sequence[tuple[DeviceProfile, NewCommand | None]], now: datetime
    ) -> list[DeviceProfile]:
        def work(conn: Connection) -> list[DeviceProfile]:
            saved = []
            for row, command in deliveries:
                if not conn.execute(_still_scheduled(row)).rowcount:
                    continue  # delivered by another pass, or scheduled anew meanwhile
                if command is not None:
                    insert_command(conn, self.keys, command, [row.device_id], now)
                saved.append(row)
            return saved

        return await self.database.write(work) if deliveries else []

    async def profile_holders(self, after: str | None, limit: int) -> list[str]:
        query = select(s.device_id).where(s.state == S.INSTALLED.value).distinct()
        if after is not None:
            query = query.where(s.device_id > after)
        query = query.order_by(s.device_id).limit(limit)
        return list(await self.database.read(lambda conn: conn.execute(query).scalars().all()))


def _schedule(conn: Connection, values: Sequence[dict[str, Any]]) -> int:
    statement = dialect_insert(conn, device_profiles).values(list(values))
    new = statement.excluded
    lacking = or_(s.desired_version.is_distinct_from(new.desired_version),
                  s.state.not_in(_HOLDING))  # fmt: skip
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "identifier"],
        set_={k: new[k] for k in values[0] if k not in ("device_id", "identifier")},
        where=lacking,
    ).returning(s.device_id)
    return len(conn.execute(statement).all())


def _still_scheduled(row: DeviceProfile) -> Any:
    """UPDATE the row's scheduled row to `row`, if still scheduled for its version."""
    values = {k: v for k, v in asdict(row).items() if k not in ("device_id", "identifier")}
    return (
        update(device_profiles)
        .where(
            s.device_id == row.device_id,
            s.identifier == row.identifier,
            s.state == S.PENDING.value,
            s.command_uuid.is_(None),
            s.desired_version == row.desired_version,
        )
        .values({**values, "state": row.state.value})
    )


def _work_page(
    conn: Connection,
    scope: WorkScope,
    after: str | None,
    limit: int,
    schedule_at: datetime | None = None,
) -> WorkPage:
    page = select(e.device_id).where(_in_scope(scope)).order_by(e.device_id).limit(limit)
    if after is not None:
        page = page.where(e.device_id > after)
    devices = [str(d) for d in conn.execute(page).scalars()]
    if not devices:
        return WorkPage([], [], [])
    postgres = conn.dialect.name == "postgresql"
    wanted = _wanted(devices, _profiles_of(scope), postgres).subquery("wanted")
    w = wanted.c
    held = and_(s.device_id == w.device_id, s.identifier == w.identifier)
    lacks = or_(s.device_id.is_(None), s.desired_version.is_distinct_from(w.version),
                s.state.not_in(_HOLDING))  # fmt: skip
    installs: list[WantedInstall] = []
    scheduled = 0
    if schedule_at is None:
        installs = _lacking(conn, wanted, held, lacks)
    else:
        scheduled = _schedule_lacking(conn, wanted, held, lacks, schedule_at)
    stale = (
        select(device_profiles)
        .where(
            _in_page(s.device_id, devices, postgres),
            s.state.not_in(_GONE),
            not_(select(w.device_id).where(held).exists()),
        )
        .order_by(s.identifier, s.device_id)
    )
    if (identifiers := _profiles_of(scope)) is not None:
        stale = stale.where(s.identifier.in_(identifiers))
    removals = [_state(r) for r in conn.execute(stale)]
    return WorkPage(devices, installs, removals, scheduled)


def _lacking(conn: Connection, wanted: Any, held: Any, lacks: Any) -> list[WantedInstall]:
    w, c = wanted.c, issued_certificates.c
    query = (
        select(w.device_id.label("wanted_device"), w.identifier.label("wanted_identifier"),
               w.version, c.der, device_profiles)
        .select_from(
            wanted.outerjoin(device_profiles, held)
            .join(enrollments, e.device_id == w.device_id)
            .outerjoin(issued_certificates, c.sha256 == e.identity_sha256)
        )
        .where(lacks)
        .order_by(w.device_id, w.identifier)
    )  # fmt: skip
    return [
        WantedInstall(r.wanted_device, r.wanted_identifier, int(r.version),
                      None if r.device_id is None else _state(r),
                      None if r.der is None else bytes(r.der))
        for r in conn.execute(query)
    ]  # fmt: skip


def _schedule_lacking(conn: Connection, wanted: Any, held: Any, lacks: Any, now: datetime) -> int:
    """What the page lacks, scheduled by one INSERT … SELECT: nothing read into Python.
    The ON CONFLICT condition is `lacks` again, on the row as the database holds it."""
    w = wanted.c
    columns = ["device_id", "identifier", "desired_version", "installed_version", "state",
               "command_uuid", "error", "updated_at"]  # fmt: skip
    rows = (
        select(w.device_id, w.identifier, w.version, s.installed_version,
               literal(S.PENDING.value, s.state.type), null(), null(),
               literal(now, s.updated_at.type))
        .select_from(wanted.outerjoin(device_profiles, held))
        .where(lacks)
    )  # fmt: skip
    statement = dialect_insert(conn, device_profiles).from_select(columns, rows)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "identifier"],
        set_={k: new[k] for k in columns[2:]},
        where=or_(s.desired_version.is_distinct_from(new.desired_version),
                  s.state.not_in(_HOLDING)),
    ).returning(s.device_id)  # fmt: skip
    return len(conn.execute(statement).all())


def _in_page(column: Any, devices: Sequence[str], postgres: bool) -> Any:
    """`column` among the page's devices (sorted): as a range too, so that the planner
    reads the primary key's range, whatever it guesses of the list."""
    return and_(column >= devices[0], column <= devices[-1], among(column, devices, postgres))


def _in_scope(scope: WorkScope) -> Any:
    """Which enrolled-table devices the scope reaches (see WorkScope)."""
    conditions: list[Any] = []
    if scope.devices is not None:
        conditions.append(e.device_id.in_(scope.devices))
    if scope.identifier is not None:
        x = scope.identifier
        conditions.append(or_(
            exists().where(a.identifier == x, a.kind == TargetKind.ALL.value),
            e.device_id.in_(select(a.target).where(a.identifier == x,
                                                   a.kind == TargetKind.DEVICE.value)),
            e.device_id.in_(_members_reached(x)),
            e.device_id.in_(select(s.device_id).where(s.identifier == x)),
        ))  # fmt: skip
    if scope.group is not None:
        conditions.append(or_(
            e.device_id.in_(select(g.device_id).where(g.name == scope.group)),
            e.device_id.in_(select(s.device_id).where(s.identifier.in_(_group_profiles(scope.group)))),
        ))  # fmt: skip
    if scope == WorkScope():
        conditions.append(_reached())
    return and_(true(), *conditions)


def _reached() -> Any:
    """The devices a full pass can find work on: every one while a profile is assigned to
    all; else those assigned one (themselves or through a group) and those holding a row
    (one to remove, perhaps). The rest are passed over by the page's own query, not
    compared a page at a time: a fleet without profiles for all costs one walk of the key."""
    assigned = select(a.target).where(a.kind == TargetKind.DEVICE.value)
    members = select(g.device_id).join(
        profile_assignments, and_(a.kind == TargetKind.GROUP.value, a.target == g.name)
    )
    return or_(
        exists().where(a.kind == TargetKind.ALL.value),
        e.device_id.in_(assigned),
        e.device_id.in_(members),
        exists().where(s.device_id == e.device_id),  # by its primary key, device by device
    )


def _members_reached(identifier: str) -> Select[Any]:
    """The members of the groups `identifier` is assigned to."""
    reaching = and_(a.kind == TargetKind.GROUP.value, a.target == g.name,
                    a.identifier == identifier)  # fmt: skip
    return select(g.device_id).select_from(device_groups).join(profile_assignments, reaching)


def _profiles_of(scope: WorkScope) -> Any:
    """The identifiers the scope looks at: None for all."""
    if scope.identifier is not None:
        return [scope.identifier]
    if scope.group is not None:
        return _group_profiles(scope.group)
    return None


def _group_profiles(group: str) -> Select[Any]:
    return select(a.identifier).where(a.kind == TargetKind.GROUP.value, a.target == group)


def _wanted(devices: Sequence[str], identifiers: Any, postgres: bool) -> Any:
    """(device_id, identifier, version) for each enrolled device of the page and the latest
    version of each live profile assigned to it, to all, or to one of its groups."""
    live = [p.deleted_at.is_(None)]
    if identifiers is not None:
        live.append(p.identifier.in_(identifiers))
    enrolled = and_(e.enrolled.is_(True), _in_page(e.device_id, devices, postgres))
    to_all = (
        select(e.device_id, p.identifier, p.latest_version.label("version"))
        .select_from(enrollments)
        .join(profile_assignments, a.kind == TargetKind.ALL.value)
        .join(profiles, p.identifier == a.identifier)
        .where(enrolled, *live)
    )
    to_device = (
        select(e.device_id, p.identifier, p.latest_version.label("version"))
        .select_from(enrollments)
        .join(profile_assignments, and_(a.kind == TargetKind.DEVICE.value, a.target == e.device_id))
        .join(profiles, p.identifier == a.identifier)
        .where(enrolled, *live)
    )
    to_group = (
        select(e.device_id, p.identifier, p.latest_version.label("version"))
        .select_from(enrollments)
        .join(device_groups, g.device_id == e.device_id)
        .join(profile_assignments, and_(a.kind == TargetKind.GROUP.value, a.target == g.name))
        .join(profiles, p.identifier == a.identifier)
        .where(enrolled, *live)
    )
    return union(to_all, to_device, to_group)
