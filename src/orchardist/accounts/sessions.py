"""Console sessions, kept on the server: the browser holds a random id, the database only
its SHA-256, so a copy of the database signs nobody in. A session ends after
`idle` without a request or `absolute` after sign-in, whichever comes first.

Every sign-in starts a new session with a new id: an id that existed before (planted in
the browser by someone else, or an earlier session) is never carried over. Each session
has its own CSRF token (the synchronizer token pattern, OWASP CSRF cheat sheet): forms
carry it, and a state-changing request without the session's token is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchardist.accounts.permissions import Actor, Role
from orchardist.storage.accounts import ConsoleSession, ConsoleSessionStore

# Requests within this long of the last noted one do not write: one write a minute per
# busy session instead of one per request (the idle timeout is counted in minutes).
TOUCH_EVERY = timedelta(seconds=60)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


class Sessions:
    def __init__(
        self, store: ConsoleSessionStore, policy: SessionPolicy, clock: Callable[[], datetime]
    ) -> None:
        self.store, self.policy, self.clock = store, policy, clock

    async def start(self, actor: Actor) -> tuple[str, Session]:
        """A new session for `actor`: (the id for the cookie, the session). Sessions that
        have ended are swept out on the way."""
        now = self.clock()
        await self.store.purge_console_sessions(now, now - self.policy.idle)
        session_id = secrets.token_urlsafe(32)
        record = ConsoleSession(
            id_sha256=session_digest(session_id),
            name=actor.name,
            role=actor.role.value,
            kind=actor.kind,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.absolute,
        )
        await self.store.add_console_session(record)
        return session_id, _session(record)

    async def resume(self, session_id: str) -> Session | None:
        """The live session with this id, its activity noted; None when unknown or ended
        (an ended one is removed)."""
        record = await self.store.console_session(session_digest(session_id))
        if record is None:
            return None
        now = self.clock()
        if now >= record.expires_at or now - record.last_seen_at >= self.policy.idle:
            await self.store.delete_console_sessions(id_sha256=record.id_sha256)
            return None
        if now - record.last_seen_at >= TOUCH_EVERY:
            await self.store.touch_console_session(record.id_sha256, now)
        return _session(record)

    async def end(self, session_id: str) -> None:
        await self.store.delete_console_sessions(id_sha256=session_digest(session_id))

    async def end_all(self, name: str) -> int:
        """Sign `name` out everywhere (a disabled account, a changed password)."""
        return await self.store.delete_console_sessions(name=name)


def _session(record: ConsoleSession) -> Session:
    actor = Actor(record.name, Role(record.role), record.kind)
    return Session(actor, record.csrf_token, record.created_at, record.expires_at)
