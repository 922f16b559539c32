"""The in-house app library on SQL (see `orchardist.storage.apps` for the contracts)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, exists, insert, or_, select, update
from sqlalchemy.engine import Connection

from orchardist.storage.apps import (
    EVERYONE,
    INFO_MAX_BYTES,
    AppChanges,
    AppVersion,
    AppVersionExistsError,
    CatalogEntry,
    NewAppVersion,
    StoredApp,
)
from orchardist.storage.profiles import Assignment, TargetKind
from orchardist.storage.sql.assignments import change_assignments, read_assignments
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.tables import (
    app_assignments,
    app_catalog_groups,
    app_versions,
    apps,
    device_apps,
)
from orchardist.storage.sql.upsert import dialect_insert

_versions, _groups = app_versions, app_catalog_groups


class SqlAppStorage:
    database: Database

    async def add_app_version(
        self, version: NewAppVersion, now: datetime, *, replace: bool = False
    ) -> AppVersion:
        values = _version_values(version, now)
        return await self.database.write(lambda conn: _add(conn, values, replace))

    async def get_app(self, bundle_id: str) -> StoredApp | None:
        found = await self.database.read(lambda conn: _apps(conn, apps.c.bundle_id == bundle_id))
        return found[0] if found else None

    async def list_apps(self) -> list[StoredApp]:
        return await self.database.read(lambda conn: _apps(conn, None))

    async def app_version(self, bundle_id: str, version_id: int | None = None) -> AppVersion | None:
        query = select(_versions).where(_versions.c.bundle_id == bundle_id)
        if version_id is None:
            latest = select(apps.c.latest_version_id).where(apps.c.bundle_id == bundle_id)
            query = query.where(_versions.c.version_id == latest.scalar_subquery())
        else:
            query = query.where(_versions.c.version_id == version_id)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else _version(row)

    async def app_versions(self, bundle_id: str) -> list[AppVersion]:
        query = (
            select(_versions)
            .where(_versions.c.bundle_id == bundle_id)
            .order_by(_versions.c.version_id)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_version(row) for row in rows]

    async def find_app_version(
        self, bundle_id: str, short_version: str, build: str
    ) -> AppVersion | None:
        key = {"bundle_id": bundle_id, "short_version": short_version, "build": build}
        row = await self.database.read(lambda conn: _find(conn, key))
        return None if row is None else _version(row)

    async def update_app(
        self, bundle_id: str, changes: AppChanges, now: datetime
    ) -> StoredApp | None:
        values: dict[str, Any] = {"updated_at": now}
        if changes.description is not None:
            values["description"] = changes.description
        if changes.icon_sha256 is not None or changes.clear_icon:
            values["icon_sha256"] = None if changes.clear_icon else changes.icon_sha256
        groups = None if changes.catalog_groups is None else _group_names(changes.catalog_groups)
        where = apps.c.bundle_id == bundle_id

        def work(conn: Connection) -> StoredApp | None:
            if not conn.execute(update(apps).where(where).values(values)).rowcount:
                return None
            if groups is not None:
                conn.execute(delete(_groups).where(_groups.c.bundle_id == bundle_id))
                if groups:
                    rows = [{"bundle_id": bundle_id, "group_name": g} for g in groups]
                    conn.execute(insert(_groups), rows)
            return _apps(conn, where)[0]

        return await self.database.write(work)

    async def delete_app(self, bundle_id: str) -> bool:
        def work(conn: Connection) -> bool:
            for table in (device_apps, app_assignments, _groups, _versions):
                conn.execute(delete(table).where(table.c.bundle_id == bundle_id))
            return bool(conn.execute(delete(apps).where(apps.c.bundle_id == bundle_id)).rowcount)

        return await self.database.write(work)

    async def file_referenced(self, sha256: str) -> bool:
        query = select(
            or_(
                exists().where(_versions.c.sha256 == sha256),
                exists().where(_versions.c.icon_sha256 == sha256),
                exists().where(apps.c.icon_sha256 == sha256),
            )
        )
        return bool(await self.database.read(lambda conn: conn.execute(query).scalar()))

    async def set_app_assignments(
        self, bundle_id: str, kind: TargetKind, targets: Sequence[str], *, assigned: bool
    ) -> None:
        key = app_assignments.c.bundle_id
        await self.database.write(
            lambda conn: change_assignments(conn, key, bundle_id, kind, targets, assigned=assigned)
        )

    async def app_assignments(self, bundle_id: str | None = None) -> list[Assignment]:
        key = app_assignments.c.bundle_id
        return await self.database.read(lambda conn: read_assignments(conn, key, bundle_id))

    async def entitled_apps(self, directory_groups: Sequence[str]) -> list[CatalogEntry]:
        names = {*directory_groups, EVERYONE}
        entitled = select(_groups.c.bundle_id).where(_groups.c.group_name.in_(names))
        query = (
            select(_versions)
            .join(
                apps,
                and_(
                    apps.c.bundle_id == _versions.c.bundle_id,
                    apps.c.latest_version_id == _versions.c.version_id,
                ),
            )
            .where(apps.c.bundle_id.in_(entitled))
            .order_by(apps.c.display_name, apps.c.bundle_id)
        )

        def work(conn: Connection) -> list[CatalogEntry]:
            latest = [_version(row) for row in conn.execute(query)]
            found = {a.bundle_id: a for a in _apps(conn, apps.c.bundle_id.in_(entitled))}
            return [CatalogEntry(found[v.bundle_id], v) for v in latest]

        return await self.database.read(work)


def _version_values(version: NewAppVersion, now: datetime) -> dict[str, Any]:
    """The row's values, or ValueError for what the schema cannot hold."""
    for name, limit in (("bundle_id", 255), ("short_version", 64), ("build", 64)):
        if not 0 < len(getattr(version, name)) <= limit:
            raise ValueError(f"the {name} must be 1 to {limit} characters long")
    info = dict(version.info or {})
    size = len(json.dumps(info, separators=(",", ":")).encode())
    if size > INFO_MAX_BYTES:
        raise ValueError(f"the extra Info.plist keys take {size} bytes, over {INFO_MAX_BYTES}")
    return {**asdict(version), "device_family": list(version.device_family), "info": info,
            "created_at": now}  # fmt: skip


def _add(conn: Connection, values: dict[str, Any], replace: bool) -> AppVersion:
    bundle_id, now = values["bundle_id"], values["created_at"]
    where = apps.c.bundle_id == bundle_id
    # Uploads of one app take turns: the app's row (created here for a new bundle id, at
    # version 0, which nobody sees before this commits) is locked until the commit.
    new_app = {"bundle_id": bundle_id, "display_name": values["display_name"],
               "latest_version_id": 0, "icon_sha256": None, "description": "",
               "created_at": now, "updated_at": now}  # fmt: skip
    conn.execute(dialect_insert(conn, apps).on_conflict_do_nothing(), new_app)
    latest = conn.execute(
        select(apps.c.latest_version_id).where(where).with_for_update()
    ).scalar_one()
    existing = _find(conn, values)
    if existing is not None and not replace:
        raise AppVersionExistsError(_version(existing))
    if existing is not None:
        version_id = existing.version_id
        conn.execute(
            update(_versions)
            .where(and_(_versions.c.bundle_id == bundle_id, _versions.c.version_id == version_id))
            .values(values)
        )
    else:
        version_id = latest + 1
        conn.execute(insert(_versions), {**values, "version_id": version_id})
    app: dict[str, Any] = {"updated_at": now}
    if version_id >= latest:  # the latest version names the app
        app.update(latest_version_id=version_id, display_name=values["display_name"])
    conn.execute(update(apps).where(where).values(app))
    stored = _find(conn, values)
    assert stored is not None
    return _version(stored)


def _find(conn: Connection, values: Mapping[str, Any]) -> Row[Any] | None:
    return conn.execute(
        select(_versions).where(
            and_(*(_versions.c[k] == values[k] for k in ("bundle_id", "short_version", "build")))
        )
    ).first()


def _group_names(names: Sequence[str]) -> list[str]:
    found = sorted(set(names))
    if any(not 0 < len(name) <= 255 for name in found):
        raise ValueError("a catalog group's name must be 1 to 255 characters long")
    return found


def _apps(conn: Connection, where: Any) -> list[StoredApp]:
    """The apps matching `where` (every app with None), by bundle id, with their groups."""
    query = select(apps).order_by(apps.c.bundle_id)
    groups = select(_groups).order_by(_groups.c.bundle_id, _groups.c.group_name)
    if where is not None:
        query = query.where(where)
        groups = groups.where(_groups.c.bundle_id.in_(select(apps.c.bundle_id).where(where)))
    named: dict[str, list[str]] = {}
    for row in conn.execute(groups):
        named.setdefault(row.bundle_id, []).append(row.group_name)
    return [
        StoredApp(
            bundle_id=row.bundle_id,
            display_name=row.display_name,
            latest_version_id=row.latest_version_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            icon_sha256=row.icon_sha256,
            description=row.description,
            catalog_groups=tuple(named.get(row.bundle_id, ())),
        )
        for row in conn.execute(query)
    ]


def _version(row: Row[Any]) -> AppVersion:
    return AppVersion(
        bundle_id=row.bundle_id,
        version_id=row.version_id,
        short_version=row.short_version,
        build=row.build,
        display_name=row.display_name,
        minimum_os=row.minimum_os,
        device_family=tuple(row.device_family),
        sha256=row.sha256,
        size=row.size,
        icon_sha256=row.icon_sha256,
        provisioning_uuid=row.provisioning_uuid,
        provisioning_expires_at=row.provisioning_expires_at,
        info=row.info,
        created_at=row.created_at,
    )
