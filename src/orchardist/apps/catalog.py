"""The app catalog's users and what they are offered.

Sign-in is the enrollment site's: the same directory (`Directory.authenticate`), and the
same session records (`OtaSession`, stored by the SHA-256 of a random token) in a phase of
their own, "catalog", which no enrollment step accepts — a catalog session cannot consent
to an enrollment, nor an enrollment session browse the catalog. A catalog session keeps
the user's directory groups as they were at sign-in and lasts `SESSION_TTL` (a Web Clip
on the home screen should not ask for the password every time it is opened); signing out
deletes it.

What a user sees: the apps whose catalog groups name one of their directory groups, or
"*" for everyone (`AppStore.entitled_apps`). Group names are compared without case, as
the console compares them for roles, and "directory:sales" (the name of the device group
enrollment makes) is read as "sales".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchardist.enroll.directory import Directory, DirectoryError, DirectoryUser
from orchardist.storage import OtaSession, OtaSessionStore
from orchardist.storage.apps import AppStore, CatalogEntry

PHASE = "catalog"
SESSION_TTL = timedelta(hours=12)
DEVICE_GROUP_PREFIX = "directory:"  # orchardist.enroll.flow.GROUP_PREFIX


@dataclass(frozen=True)
class CatalogUser:
    login: str
    groups: tuple[str, ...]
    expires_at: datetime


class CatalogSessions:
    def __init__(
        self,
        directory: Directory | None,
        store: OtaSessionStore,
        clock: Callable[[], datetime],
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        self.directory, self.store, self.clock, self.ttl = directory, store, clock, ttl

    @property
    def available(self) -> bool:
        """Whether users can sign in at all (a directory is set up)."""
        return self.directory is not None

    async def sign_in(self, login: str, password: str) -> tuple[str, DirectoryUser]:
        """(the session token for the cookie, the user); DirectoryError when refused (its
        message is for the user)."""
        if self.directory is None:
            raise DirectoryError("the app catalog's sign-in is not set up on this server: ask IT")
        user = await self.directory.authenticate(login, password)
        token, now = secrets.token_urlsafe(32), self.clock()
        session = OtaSession(_digest(token), user.login, user.groups, PHASE, now, now + self.ttl)
        await self.store.save_ota_session(session)
        return token, user

    async def user(self, token: str) -> CatalogUser | None:
        """The signed-in user of a live catalog session, or None."""
        if not token:
            return None
        session = await self.store.ota_session(token_sha256=_digest(token))
        if session is None or session.phase != PHASE or session.expires_at <= self.clock():
            return None
        return CatalogUser(session.user, session.groups, session.expires_at)

    async def sign_out(self, token: str) -> None:
        """End the session (a token that names no catalog session changes nothing)."""
        if token and await self.user(token) is not None:
            await self.store.delete_ota_session(_digest(token))


def form_token(session_token: str) -> str:
    """The token the catalog's forms carry: derived from the session's, so a page on
    another site can neither read nor compute it (the cookie is HttpOnly)."""
    return hashlib.sha256(b"orchardist catalog form:" + session_token.encode()).hexdigest()


def form_token_matches(session_token: str, given: str | None) -> bool:
    expected = form_token(session_token)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def entitled(store: AppStore, groups: Sequence[str]) -> list[CatalogEntry]:
    """The catalog of a user in `groups` (see the module docstring for how names match)."""
    held = {g.casefold() for g in groups}
    named = {
        name
        for app in await store.list_apps()
        for name in app.catalog_groups
        if name.casefold().removeprefix(DEVICE_GROUP_PREFIX) in held
    }
    return await store.entitled_apps([*groups, *sorted(named)])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
