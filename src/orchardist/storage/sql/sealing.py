"""Secrets at rest on SQL: which columns are sealed with the master key (orchardist.keys),
each with its key id column beside it, and the pass that (re-)seals them.

A value whose key id is NULL is plaintext: a row written before migration 0021. It is read
as it is and sealed by `seal_plaintext` once per `serve` start (cli.serve), or by `reseal`
(`orchardist keys rotate`), which also moves every value to the current key. Both work in
batches, each its own transaction, and only touch a row still as they read it: a crash
leaves each row sealed by an old key or the new one, never lost, and a re-run finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Select, Table, and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from orchardist.keys.master import MasterKeys
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.tables import commands, enrollments, profile_versions

# Commands whose body carries a secret (an unlock token, a PIN, a profile that may be clear):
# their body is sealed; every other command is stored, and sent, without touching the key.
SEALED_COMMANDS = frozenset(
    {
        "ClearPasscode",
        "DeviceLock",
        "EraseDevice",
        "InstallProfile",
        "SetFirmwarePassword",
        "SetRecoveryLock",
    }
)
_BATCH = 500


def place(table: str, column: str, *row_key: object) -> bytes:
    """The associated data binding a sealed value to its table, column and row."""
    return "\0".join((table, column, *map(str, row_key))).encode()


def seal(keys: MasterKeys, value: bytes | None, where: bytes) -> tuple[bytes | None, str | None]:
    """(sealed value, key id); (None, None) for no value."""
    return (None, None) if value is None else keys.seal(value, where)


def unseal(
    keys: MasterKeys, value: bytes | None, sealed_by: str | None, where: bytes
) -> bytes | None:
    """The plaintext; a value without a key id is a plaintext row from before 0021."""
    if value is None:
        return None
    return bytes(value) if sealed_by is None else keys.open(bytes(value), sealed_by, where)


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: str
    key_column: str
    row_key: tuple[str, ...]  # the primary key columns, in `place` order
    only: ColumnElement[bool] | None = None  # plaintext rows that hold a secret at all

    def place(self, row_key: tuple[object, ...]) -> bytes:
        return place(self.table.name, self.column, *row_key)


SEALED_COLUMNS = (
    SealedColumn(enrollments, "unlock_token", "unlock_token_key", ("device_id",)),
    SealedColumn(enrollments, "bootstrap_token", "bootstrap_token_key", ("device_id",)),
    SealedColumn(profile_versions, "body", "body_key", ("identifier", "version")),
    SealedColumn(
        commands,
        "body",
        "body_key",
        ("command_uuid",),
        commands.c.request_type.in_(sorted(SEALED_COMMANDS)),
    ),
)


async def seal_plaintext(database: Database, keys: MasterKeys) -> int:
    """Seal the rows written before migration 0021; how many were sealed."""
    return await _pass(database, keys, rotate=False)


async def reseal(database: Database, keys: MasterKeys) -> int:
    """Seal every plaintext row and move every sealed one to the current key (`keys rotate`);
    how many were rewritten. Safe to re-run."""
    return await _pass(database, keys, rotate=True)


async def count_not_current(database: Database, keys: MasterKeys) -> int:
    """Secret values not (yet) sealed by the current key."""
    total = 0
    for sealed in SEALED_COLUMNS:
        query = select(func.count()).where(_stale(sealed, keys, rotate=True))
        total += int(await database.read(partial(_scalar, query)))
    return total


def _scalar(query: Select[Any], conn: Connection) -> Any:
    return conn.execute(query).scalar()


async def _pass(database: Database, keys: MasterKeys, *, rotate: bool) -> int:
    done = 0
    for sealed in SEALED_COLUMNS:
        while count := await database.write(
            partial(_batch, sealed=sealed, keys=keys, rotate=rotate)
        ):
            done += count
    return done


def _stale(sealed: SealedColumn, keys: MasterKeys, *, rotate: bool) -> ColumnElement[bool]:
    c = sealed.table.c
    plaintext: ColumnElement[bool] = c[sealed.key_column].is_(None)
    if sealed.only is not None:
        plaintext = and_(plaintext, sealed.only)
    stale = or_(plaintext, c[sealed.key_column] != keys.current_id) if rotate else plaintext
    return and_(c[sealed.column].is_not(None), stale)


def _batch(conn: Connection, *, sealed: SealedColumn, keys: MasterKeys, rotate: bool) -> int:
    c = sealed.table.c
    columns = [c[name] for name in sealed.row_key]
    query = select(*columns, c[sealed.column], c[sealed.key_column])
    rows = conn.execute(query.where(_stale(sealed, keys, rotate=rotate)).limit(_BATCH)).all()
    for row in rows:
        row_key = tuple(row[: len(columns)])
        value, sealed_by = row[len(columns)], row[len(columns) + 1]
        where = sealed.place(row_key)
        new_value, new_key = keys.seal(unseal(keys, value, sealed_by, where) or b"", where)
        key_column = c[sealed.key_column]
        unchanged = key_column.is_(None) if sealed_by is None else key_column == sealed_by
        conn.execute(
            update(sealed.table)
            .where(*(col == v for col, v in zip(columns, row_key, strict=True)), unchanged)
            .values({sealed.column: new_value, sealed.key_column: new_key})
        )
    return len(rows)
