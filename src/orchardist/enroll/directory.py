"""Directory login for enrollment: LDAP (OpenLDAP and the like) and Active Directory.

The usual two-step: bind as a service account, search the user by any of the configured
login attributes (uid, mail, sAMAccountName, userPrincipalName; the login is escaped, so
`*)(uid=*` finds nobody), then bind as the user with their password, and read their
groups (memberOf, or a group search for servers without that overlay). python-ldap does
the protocol; its calls block, so they run in a worker thread.

Empty passwords are refused before any bind: an LDAP simple bind with a DN and no
password is an *unauthenticated* bind that many servers answer with success.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ldap

DEFAULT_LOGIN_ATTRIBUTES = ("uid", "mail", "sAMAccountName", "userPrincipalName")


class DirectoryError(Exception):
    """Login refused or impossible; str(err) is safe to show the user."""


class InvalidCredentialsError(DirectoryError):
    """Unknown user or wrong password: one message for both, so that names cannot be probed."""


class AccountLockedError(DirectoryError):
    """The account exists and the password may be right, but it may not sign in."""


class DirectoryUnavailableError(DirectoryError):
    """The directory could not be reached or refused the service account."""


@dataclass(frozen=True)
class DirectoryConfig:
    url: str  # ldap://host:389, ldaps://host:636
    base_dn: str
    bind_dn: str | None = None  # None: search anonymously
    bind_password: str | None = None
    login_attributes: tuple[str, ...] = DEFAULT_LOGIN_ATTRIBUTES
    user_object_filter: str = "(|(objectClass=person)(objectClass=inetOrgPerson))"
    group_base_dn: str | None = None  # for the group search when memberOf is absent
    start_tls: bool = False
    ca_file: Path | None = None
    timeout_seconds: float = 5.0
    active_directory: bool = False  # referrals off; lockout read from userAccountControl


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    login: str
    display_name: str | None
    email: str | None
    groups: tuple[str, ...] = field(default=())  # group common names


def config_from(settings: Any) -> DirectoryConfig:
    """The DirectoryConfig for `Settings.directory` (kept apart so this core does not
    import the settings module)."""
    password = settings.bind_password
    return DirectoryConfig(
        url=settings.url,
        base_dn=settings.base_dn,
        bind_dn=settings.bind_dn,
        bind_password=password.get_secret_value() if password is not None else None,
        login_attributes=tuple(settings.login_attributes),
        group_base_dn=settings.group_base_dn,
        start_tls=settings.start_tls,
        ca_file=settings.ca_file,
        timeout_seconds=settings.timeout_seconds,
        active_directory=settings.active_directory,
    )


class Directory:
    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config

    async def authenticate(self, login: str, password: str) -> DirectoryUser:
        if not login or not password:
            raise InvalidCredentialsError("enter your user name and password")
        return await asyncio.to_thread(self._authenticate, login, password)

    async def lookup(self, login: str) -> DirectoryUser | None:
        """The user's entry and groups, found with the service account (no password: for
        invitations, whose link stands in for the sign-in)."""
        return await asyncio.to_thread(self._lookup, login)

    def _lookup(self, login: str) -> DirectoryUser | None:
        service = self._bound(self.config.bind_dn, self.config.bind_password, service=True)
        try:
            found = self._find_user(service, login)
            if found is None:
                return None
            dn, attributes = found
            groups = self._groups(service, dn, attributes)
        finally:
            service.unbind_s()
        return _user(dn, login, attributes, groups)

    def _authenticate(self, login: str, password: str) -> DirectoryUser:
        service = self._bound(self.config.bind_dn, self.config.bind_password, service=True)
        try:
            found = self._find_user(service, login)
            if found is None:
                raise InvalidCredentialsError("unknown user or wrong password")
            dn, attributes = found
            if _locked(attributes):
                raise AccountLockedError("this account is locked or disabled: ask IT")
            self._bound(dn, password, service=False).unbind_s()  # the password check
            groups = self._groups(service, dn, attributes)
        finally:
            service.unbind_s()
        return _user(dn, login, attributes, groups)

    def _bound(self, dn: str | None, password: str | None, *, service: bool) -> Any:
        # python-ldap is imported where it is used: it takes tens of ms, and every CLI
        # command builds the services (wiring) whether a directory is configured or not.
        import ldap

        config = self.config
        conn = ldap.initialize(config.url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, config.timeout_seconds)
        conn.set_option(ldap.OPT_TIMEOUT, config.timeout_seconds)
        # AD answers searches at the domain root with referrals to other partitions, which
        # python-ldap would chase (with our credentials, to other hosts): never.
        conn.set_option(ldap.OPT_REFERRALS, 0)
        if config.ca_file is not None:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(config.ca_file))
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        try:
            if config.start_tls:
                conn.start_tls_s()
            conn.simple_bind_s(dn or "", password or "")
        except ldap.INVALID_CREDENTIALS as exc:
            if service:
                raise DirectoryUnavailableError(
                    "the directory refused the service account: check directory.bind_dn "
                    "and directory.bind_password"
                ) from exc
            raise _refusal(exc) from exc
        except (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR) as exc:
            raise DirectoryUnavailableError(
                f"cannot reach the directory at {config.url}: {_description(exc)}"
            ) from exc
        except ldap.LDAPError as exc:
            raise DirectoryUnavailableError(f"the directory said: {_description(exc)}") from exc
        return conn

    def _find_user(self, conn: Any, login: str) -> tuple[str, dict[str, list[bytes]]] | None:
        import ldap.filter

        escaped = ldap.filter.escape_filter_chars(login)
        either = "".join(f"({a}={escaped})" for a in self.config.login_attributes)
        query = f"(&{self.config.user_object_filter}(|{either}))"
        attributes = ["cn", "displayName", "mail", "memberOf", "userAccountControl",
                      "lockoutTime", "pwdAccountLockedTime"]  # fmt: skip
        try:
            results = conn.search_ext_s(
                self.config.base_dn, ldap.SCOPE_SUBTREE, query, attributes, sizelimit=2,
                timeout=self.config.timeout_seconds,
            )  # fmt: skip
        except ldap.SIZELIMIT_EXCEEDED as exc:
            raise InvalidCredentialsError(
                "that name matches several accounts: use your e-mail"
            ) from exc
        except ldap.LDAPError as exc:
            raise DirectoryUnavailableError(f"user search failed: {_description(exc)}") from exc
        users = [(dn, attrs) for dn, attrs in results if dn]  # referrals have no DN
        if len(users) != 1:
            return None
        return users[0]

    def _groups(self, conn: Any, dn: str, attributes: dict[str, list[bytes]]) -> tuple[str, ...]:
        import ldap.filter

        member_of = [v.decode() for v in attributes.get("memberOf", [])]
        if member_of:
            return tuple(sorted(_cn(g) for g in member_of))
        base = self.config.group_base_dn or self.config.base_dn
        query = (
            f"(|(&(objectClass=groupOfNames)(member={ldap.filter.escape_filter_chars(dn)}))"
            f"(&(objectClass=group)(member={ldap.filter.escape_filter_chars(dn)})))"
        )
        try:
            results = conn.search_ext_s(base, ldap.SCOPE_SUBTREE, query, ["cn"],
                                        timeout=self.config.timeout_seconds)  # fmt: skip
        except ldap.LDAPError as exc:
            raise DirectoryUnavailableError(f"group search failed: {_description(exc)}") from exc
        return tuple(sorted(_first(a, "cn") or _cn(g) for g, a in results if g))


def _user(
    dn: str, login: str, attributes: dict[str, list[bytes]], groups: tuple[str, ...]
) -> DirectoryUser:
    return DirectoryUser(
        dn=dn,
        login=login,
        display_name=_first(attributes, "displayName") or _first(attributes, "cn"),
        email=_first(attributes, "mail"),
        groups=groups,
    )


def _refusal(exc: ldap.LDAPError) -> DirectoryError:
    # AD puts the reason in the diagnostic: "data 775" locked, "data 533" disabled.
    info = _description(exc)
    if any(code in info for code in ("data 775", "data 533", "data 701", "data 532")):
        return AccountLockedError("this account is locked, disabled or expired: ask IT")
    return InvalidCredentialsError("unknown user or wrong password")


def _locked(attributes: dict[str, list[bytes]]) -> bool:
    """AD: disabled (userAccountControl bit 2) or locked out (lockoutTime); OpenLDAP's
    password policy: pwdAccountLockedTime set (000001010000Z: locked by an admin)."""
    if _first(attributes, "pwdAccountLockedTime"):
        return True
    control = _first(attributes, "userAccountControl")
    if control and control.isdigit() and int(control) & 0x2:  # ACCOUNTDISABLE
        return True
    lockout = _first(attributes, "lockoutTime")
    return bool(lockout and lockout.isdigit() and int(lockout) > 0)


def _first(attributes: dict[str, list[bytes]], name: str) -> str | None:
    values = attributes.get(name) or []
    return values[0].decode("utf-8", "replace") if values else None


def _cn(dn: str) -> str:
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def _description(exc: BaseException) -> str:
    detail = exc.args[0] if exc.args else {}
    if isinstance(detail, dict):
        return str(detail.get("info") or detail.get("desc") or exc)
    return str(exc)
