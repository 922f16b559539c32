"""Accounts: local console accounts (`orchardist admin …`) and signing in, with a local
password or through the directory.

A name that is a local account signs in with its local password only; any other name is
tried against the directory (when one is set up), and the user's groups give the role
through `[console]` admin_groups / operator_groups / viewer_groups (the highest wins). A
directory user in none of them cannot sign in. Every attempt passes the throttle first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchardist.accounts import passwords
from orchardist.accounts.lockout import SignInThrottle
from orchardist.accounts.permissions import Actor, Role
from orchardist.accounts.sessions import Session, Sessions
from orchardist.enroll.directory import (
    AccountLockedError,
    Directory,
    DirectoryUser,
    InvalidCredentialsError,
)
from orchardist.storage.accounts import Account, AccountStore

NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
REFUSED = "Unknown user or wrong password."


class SignInError(Exception):
    """Sign-in refused; str(err) is for the person at the form."""


class AccountError(ValueError):
    """An account command that cannot be done; str(err) says why."""


@dataclass(frozen=True)
class GroupRoles:
    """Directory group names (compared without case) that give each role."""

    admin: Sequence[str] = ()
    operator: Sequence[str] = ()
    viewer: Sequence[str] = ()

    def role_of(self, groups: Sequence[str]) -> Role | None:
        held = {g.lower() for g in groups}
        for role, names in ((Role.ADMIN, self.admin), (Role.OPERATOR, self.operator),
                            (Role.VIEWER, self.viewer)):  # fmt: skip
            if held & {n.lower() for n in names}:
                return role
        return None


@dataclass(frozen=True)
class SignedIn:
    session_id: str  # for the cookie; stored only as its digest
    session: Session


class Accounts:
    def __init__(
        self,
        store: AccountStore,
        sessions: Sessions,
        throttle: SignInThrottle,
        *,
        directory: Directory | None = None,
        group_roles: GroupRoles = GroupRoles(),
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.sessions, self.throttle = store, sessions, throttle
        self.directory, self.group_roles, self.clock = directory, group_roles, clock

    # -- the `orchardist admin` commands

    async def create(self, name: str, role: str, password: str) -> Account:
        if not NAME.fullmatch(name):
            raise AccountError(
                f"{name!r} is not a valid account name: 1-64 lower-case letters, digits, "
                "'.', '_', '@' or '-', starting with a letter or digit"
            )
        now = self.clock()
        account = Account(name, _role(role).value, _hash(password), now, now)
        try:
            await self.store.add_account(account)
        except ValueError as exc:
            raise AccountError(f"an account named {name!r} exists already") from exc
        return account

    async def list_accounts(self) -> list[Account]:
        return await self.store.list_accounts()

    async def disable(self, name: str) -> None:
        """Disable the account and sign it out everywhere."""
        if not await self.store.update_account(name, disabled_at=self.clock()):
            raise AccountError(f"no account named {name!r}")
        await self.sessions.end_all(name)

    async def enable(self, name: str) -> None:
        """Let a disabled account sign in again (with the password it had)."""
        if not await self.store.enable_account(name):
            raise AccountError(f"no account named {name!r}")

    async def set_password(self, name: str, password: str) -> None:
        """A new password; the account's sessions end (whoever had the old one is out)."""
        changed = await self.store.update_account(
            name, password_hash=_hash(password), changed_at=self.clock()
        )
        if not changed:
            raise AccountError(f"no account named {name!r}")
        await self.sessions.end_all(name)

    # -- signing in

    async def sign_in(self, login: str, password: str, address: str) -> SignedIn:
        """A new session, or SignInError / LockedOutError (directory outages raise
        DirectoryUnavailableError)."""
        login = login.strip()
        await self.throttle.check(login, address)
        actor = await self._verify(login, password)
        if actor is None:
            await self.throttle.failed(login, address)  # raises when this locks
            raise SignInError(REFUSED)
        await self.throttle.succeeded(login)
        session_id, session = await self.sessions.start(actor)
        return SignedIn(session_id, session)

    async def _verify(self, login: str, password: str) -> Actor | None:
        account = await self.store.get_account(login.lower()) if login else None
        if account is not None or self.directory is None:
            stored = account.password_hash if account is not None else None
            if not (login and passwords.verify_password(stored, password)):
                return None
            assert account is not None
            if account.disabled_at is not None:
                raise SignInError("This account is disabled: ask an administrator.")
            await self._upgrade_hash(account, password)
            return Actor(account.name, Role(account.role), "account")
        try:
            user = await self.directory.authenticate(login, password)
        except InvalidCredentialsError:
            return None
        except AccountLockedError as exc:  # locked by the directory: not our count
            raise SignInError(str(exc)) from exc
        return self._directory_actor(user)

    def _directory_actor(self, user: DirectoryUser) -> Actor:
        role = self.group_roles.role_of(user.groups)
        if role is None:
            raise SignInError(
                "Your directory account is in no group allowed to use the console: ask an "
                "administrator to add you to one."
            )
        return Actor(user.login, role, "directory")

    async def _upgrade_hash(self, account: Account, password: str) -> None:
        if passwords.needs_rehash(account.password_hash):
            await self.store.update_account(
                account.name, password_hash=passwords.rehash(password),
                changed_at=account.password_changed_at,
            )  # fmt: skip


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}: use admin, operator or viewer") from None


def _hash(password: str) -> str:
    try:
        return passwords.hash_password(password)
    except passwords.WeakPasswordError as exc:
        raise AccountError(str(exc)) from exc
