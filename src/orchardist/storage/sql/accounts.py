"""Accounts, console sessions, the sign-in throttle and API tokens on SQL (see
`orchardist.storage.accounts`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from orchardist.storage.accounts import Account, ApiToken, ConsoleSession
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.tables import api_tokens, console_accounts, console_sessions
from orchardist.storage.sql.tables import sign_in_throttle as _throttle

_sessions = console_sessions


class SqlAccountStorage:
    database: Database

    # -- AccountStore

    async def add_account(self, account: Account) -> None:
        await self._add_named(console_accounts, account, "an account")

    async def get_account(self, name: str) -> Account | None:
        query = select(console_accounts).where(console_accounts.c.name == name)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else Account(**row._asdict())

    async def list_accounts(self) -> list[Account]:
        query = select(console_accounts).order_by(console_accounts.c.name)
        return [Account(**row) for row in await self._rows(query)]

    async def update_account(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        changed_at: datetime | None = None,
        disabled_at: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {}
        if password_hash is not None:
            values.update(password_hash=password_hash, password_changed_at=changed_at)
        if disabled_at is not None:
            values["disabled_at"] = disabled_at
        change = update(console_accounts).where(console_accounts.c.name == name)
        query = select(console_accounts.c.name).where(console_accounts.c.name == name)

        def work(conn: Connection) -> bool:
            if values:
                return conn.execute(change.values(values)).rowcount == 1
            return conn.execute(query).first() is not None

        return await self.database.write(work)

    async def enable_account(self, name: str) -> bool:
        change = update(console_accounts).where(console_accounts.c.name == name)
        statement = change.values(disabled_at=None)
        return await self.database.write(lambda conn: conn.execute(statement).rowcount == 1)

    # -- ConsoleSessionStore

    async def add_console_session(self, session: ConsoleSession) -> None:
        row = dataclasses.asdict(session)
        await self.database.write(lambda conn: conn.execute(insert(_sessions), row))

    async def console_session(self, id_sha256: str) -> ConsoleSession | None:
        query = select(_sessions).where(_sessions.c.id_sha256 == id_sha256)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else ConsoleSession(**row._asdict())

    async def touch_console_session(self, id_sha256: str, at: datetime) -> None:
        change = update(_sessions).where(_sessions.c.id_sha256 == id_sha256)
        await self.database.write(lambda conn: conn.execute(change.values(last_seen_at=at)))

    async def delete_console_sessions(
        self, *, id_sha256: str | None = None, name: str | None = None
    ) -> int:
        if (id_sha256 is None) == (name is None):
            raise ValueError("give id_sha256 or name")
        which = _sessions.c.id_sha256 == id_sha256 if name is None else _sessions.c.name == name
        change = delete(_sessions).where(which)
        return await self.database.write(lambda conn: conn.execute(change).rowcount)

    async def purge_console_sessions(self, now: datetime, idle_since: datetime) -> int:
        stale = or_(_sessions.c.expires_at <= now, _sessions.c.last_seen_at < idle_since)
        change = delete(_sessions).where(stale)
        return await self.database.write(lambda conn: conn.execute(change).rowcount)

    # -- SignInThrottleStore

    async def sign_in_locked_until(self, keys: Sequence[str], now: datetime) -> datetime | None:
        query = select(func.max(_throttle.c.locked_until)).where(
            and_(_throttle.c.key.in_(list(keys)), _throttle.c.locked_until > now)
        )
        found: datetime | None = await self.database.read(lambda conn: conn.execute(query).scalar())
        return found

    async def record_sign_in_failure(
        self, key: str, now: datetime, *, window_start: datetime, limit: int, locked_until: datetime
    ) -> datetime | None:
        def work(conn: Connection) -> datetime | None:
            postgres = conn.dialect.name == "postgresql"
            dialect_insert = postgresql.insert if postgres else sqlite.insert
            fresh = {"key": key, "failures": 0, "first_failure_at": now, "locked_until": None}
            conn.execute(dialect_insert(_throttle).values(fresh).on_conflict_do_nothing())
            # Locked for this transaction (PostgreSQL; SQLite has one writer), so racing
            # failures are counted one after the other.
            row = conn.execute(
                select(_throttle).where(_throttle.c.key == key).with_for_update()
            ).one()
            failures, first = row.failures, row.first_failure_at
            if first < window_start:
                failures, first = 0, now
            failures += 1
            lock = None
            if failures >= limit:
                lock, failures, first = locked_until, 0, now
            values = {"failures": failures, "first_failure_at": first}
            if lock is not None:
                values["locked_until"] = lock
            conn.execute(update(_throttle).where(_throttle.c.key == key).values(values))
            return lock

        return await self.database.write(work)

    async def clear_sign_in_failures(self, key: str) -> None:
        change = delete(_throttle).where(_throttle.c.key == key)
        await self.database.write(lambda conn: conn.execute(change))

    # -- API tokens

    async def add_api_token(self, token: ApiToken) -> None:
        await self._add_named(api_tokens, token, "a token")

    async def find_api_token(self, token_sha256: str) -> ApiToken | None:
        query = select(api_tokens).where(api_tokens.c.token_sha256 == token_sha256)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else ApiToken(**row._asdict())

    async def list_api_tokens(self) -> list[ApiToken]:
        query = select(api_tokens).order_by(api_tokens.c.name)
        return [ApiToken(**row) for row in await self._rows(query)]

    async def revoke_api_token(self, name: str, at: datetime) -> bool:
        revoke = (
            update(api_tokens)
            .where(and_(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None)))
            .values(revoked_at=at)
        )
        known = select(api_tokens.c.name).where(api_tokens.c.name == name)

        def work(conn: Connection) -> bool:
            conn.execute(revoke)
            return conn.execute(known).first() is not None

        return await self.database.write(work)

    async def _add_named(self, table: Table, record: Account | ApiToken, what: str) -> None:
        """Insert a record keyed by its name; ValueError when the name is taken."""
        row = dataclasses.asdict(record)
        try:
            await self.database.write(lambda conn: conn.execute(insert(table), row))
        except IntegrityError as exc:
            raise ValueError(f"{what} named {record.name!r} exists already") from exc

    async def _rows(self, query: Select[Any]) -> list[dict[str, Any]]:
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [row._asdict() for row in rows]
