"""Inventory on SQL: one transaction replaces what a result speaks about.

A list (apps, certificates, profiles, provisioning profiles) is rewritten only when it
differs from the one last written: `inventory.list_digests` keeps each one's
`list_digest`, and a device answering the same InstalledApplicationList again (what devices
mostly do) costs a digest, not a thousand deletes and inserts."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from orchardist.storage.inventory import (
    App,
    Certificate,
    DeviceInventory,
    InventoryUpdate,
    Profile,
    ProvisioningProfile,
)
from orchardist.storage.sql.database import Database, DriverSql
from orchardist.storage.sql.tables import (
    inventory,
    inventory_apps,
    inventory_certificates,
    inventory_profiles,
    inventory_provisioning_profiles,
)

# From this many listed items, the rows are written off the event loop (Idles go on).
LARGE_INVENTORY = 200


class SqlInventoryStorage:
    database: Database

    async def apply_inventory(self, device_id: str, update: InventoryUpdate, now: datetime) -> None:
        def work(conn: Connection) -> None:
            known = conn.execute(_KNOWN, {"device_id": device_id}).first()
            digests = dict(known.list_digests or {}) if known is not None else {}
            for name, table in _LIST_TABLES.items():
                digest = update.list_digest(name)
                # The list is read only when it changed (a worker-read report's lists stay
                # pickled until then: mdm/report_digest).
                if digest is not None and digests.get(table.name) != digest:
                    _replace(conn, table, device_id, _rows_of(table, device_id, update, name))
                    digests[table.name] = digest
            _apply_documents(conn, device_id, update, now, known, digests)

        if update.listed() >= LARGE_INVENTORY:  # thousands of rows: written beside the loop
            await self.database.write_beside(work)
        else:
            await self.database.write(work)

    async def get_inventory(self, device_id: str) -> DeviceInventory | None:
        def work(conn: Connection) -> DeviceInventory | None:
            head = conn.execute(select(inventory).where(inventory.c.device_id == device_id)).first()
            if head is None:
                return None
            return DeviceInventory(
                updated_at=head.updated_at,
                facts=head.facts or {},
                facts_seen_at={
                    key: datetime.fromisoformat(seen)
                    for key, seen in (head.facts_seen or {}).items()
                },
                security=head.security or {},
                restrictions=head.restrictions or {},
                apps=tuple(
                    App(**row) for row in _rows(conn, inventory_apps, device_id, "identifier")
                ),
                certificates=tuple(
                    Certificate(**{k: v for k, v in row.items() if k != "position"})
                    for row in _rows(conn, inventory_certificates, device_id, "position")
                ),
                profiles=tuple(
                    Profile(**row)
                    for row in _rows(conn, inventory_profiles, device_id, "identifier")
                ),
                provisioning_profiles=tuple(
                    ProvisioningProfile(**row)
                    for row in _rows(conn, inventory_provisioning_profiles, device_id, "uuid")
                ),
            )

        return await self.database.read(work)


def _apply_documents(
    conn: Connection,
    device_id: str,
    update: InventoryUpdate,
    now: datetime,
    known: Row[Any, Any, Any] | None,
    digests: dict[str, str],
) -> None:
    documents = {"security": update.security, "restrictions": update.restrictions}
    values: dict[str, Any] = {k: dict(v) for k, v in documents.items() if v is not None}
    values["updated_at"] = now
    values["list_digests"] = digests
    if update.facts is not None:
        # Merged, not replaced: an answer to two queries must not erase the battery level.
        facts, seen = (known.facts or {}, known.facts_seen or {}) if known else ({}, {})
        values["facts"] = {**facts, **update.facts}
        values["facts_seen"] = {**seen, **dict.fromkeys(update.facts, now.isoformat())}
    if known is None:
        conn.execute(insert(inventory), {"device_id": device_id, **values})
    else:
        conn.execute(_inventory_row(device_id).values(values))


_KNOWN = select(inventory.c.facts, inventory.c.facts_seen, inventory.c.list_digests).where(
    inventory.c.device_id == bindparam("device_id")
)


# InventoryUpdate's lists and their tables (`inventory.list_digests` is keyed by the table).
_LIST_TABLES = {
    "apps": inventory_apps,
    "profiles": inventory_profiles,
    "provisioning_profiles": inventory_provisioning_profiles,
    "certificates": inventory_certificates,
}


def _rows_of(
    table: Table, device_id: str, update: InventoryUpdate, name: str
) -> list[tuple[Any, ...]]:
    """The rows of `table` for the list `name` (values in the table's column order; the
    certificates keep the device's order in `position`)."""
    items: tuple[Any, ...] = getattr(update, name)
    fields = attrgetter(*(c.name for c in table.columns if c.name not in _NOT_FIELDS))
    if table is inventory_certificates:
        return [(device_id, n, *fields(c)) for n, c in enumerate(items)]
    return [(device_id, *fields(i)) for i in items]


def _inventory_row(device_id: str) -> Any:
    return update(inventory).where(inventory.c.device_id == device_id)


# The list tables' columns besides the record's fields, first in each table.
_NOT_FIELDS = frozenset({"device_id", "position"})


def _replace(conn: Connection, table: Table, device_id: str, rows: list[tuple[Any, ...]]) -> None:
    """The device's rows of `table` replaced by `rows` (values in the table's column order)."""
    sql = DriverSql(conn)  # thousands of rows: SQLAlchemy's per-value work was a fifth
    sql.execute(f"DELETE FROM {table.name} WHERE device_id = $1", device_id)  # noqa: S608
    if rows:
        sql.insert_many(table, rows)


def _rows(conn: Connection, table: Table, device_id: str, order: str) -> list[dict[str, Any]]:
    query = select(table).where(table.c.device_id == device_id).order_by(table.c[order])
    return [
        {k: v for k, v in row._mapping.items() if k != "device_id"} for row in conn.execute(query)
    ]
