"""The AuditLog service: one `record` call per state-changing action, whoever asks for it.

The API records through its routes (web/api/audited.py), the CLI through its commands
(cli/auditing.py) and the console through its handlers, each with the Actor it knows.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from orchardist.audit.safe import clean_detail, clean_targets, clean_text
from orchardist.storage.audit import AuditEntry, AuditQuery, AuditRecord, AuditStore, Outcome, Via

ACTION_LENGTH = 64
ACTOR_LENGTH = 255
REASON_LENGTH = 1000


@dataclass(frozen=True)
class Actor:
    """Who acted, and through which door. `name` is an API token's name (via api), a console
    account's name (via console), `cli:<OS user>` for the CLI on the server (via cli), or a
    directory user's login in the app catalog (via catalog)."""

    name: str
    via: Via

    @classmethod
    def api_token(cls, name: str) -> Actor:
        return cls(name, Via.API)

    @classmethod
    def account(cls, name: str) -> Actor:
        return cls(name, Via.CONSOLE)

    @classmethod
    def catalog_user(cls, login: str) -> Actor:
        """A directory user acting in the app catalog (a managed install)."""
        return cls(login, Via.CATALOG)

    @classmethod
    def local_user(cls) -> Actor:
        """The CLI's user as the login session names it (getpass: $LOGNAME, $USER, then the
        password database). Whoever runs the CLI can write to the database anyway: this says
        who it was, it proves nothing."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # a uid without a name, in some containers
            user = f"uid-{os.getuid()}"
        return cls(f"cli:{user}", Via.CLI)


class Asker(Protocol):
    """Who the permission gate refused (orchardist.accounts' Actor): a console account, a
    directory user or an API token ("account", "directory", "token")."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def kind(self) -> str: ...


class AuditLog:
    def __init__(self, store: AuditStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    async def record(
        self,
        actor: Actor,
        action: str,
        targets: Iterable[object] = (),
        outcome: Outcome = Outcome.OK,
        detail: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
    ) -> int:
        """Add an entry now and return its id. `action` is a dotted name such as
        `command.queue`; `targets` name what was acted upon (UDIDs, profile identifiers,
        `group:NAME`, account or token names); `reason` says why it was denied or failed.
        `detail` must hold no secret: keys named like one are hidden regardless."""
        if not action:
            raise ValueError("an audit entry needs an action")
        return await self.store.add_audit_entry(
            AuditRecord(
                at=self.clock(),
                actor=clean_text(actor.name, ACTOR_LENGTH),
                via=actor.via,
                action=clean_text(action, ACTION_LENGTH),
                targets=clean_targets(targets),
                outcome=outcome,
                reason=None if reason is None else clean_text(reason, REASON_LENGTH),
                detail=clean_detail(detail or {}),
            )
        )

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        """Newest first; continue with `before` = the last entry's id."""
        return await self.store.audit_entries(query)

    async def record_denial(self, asker: Asker, permission: str, target: str | None) -> None:
        """The permission gate's `on_denied`: a denied entry, its action the permission that
        was needed (e.g. `devices.erase`). API tokens are left out: their route records the
        refusal with its own action and targets (web/api/audited.py), once."""
        if asker.kind == "token":
            return
        await self.record(
            Actor.account(asker.name),
            str(permission),
            [] if target is None else [target],
            Outcome.DENIED,
            reason=f"the {asker.role} role may not ({permission})",
        )


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """One entry as the API, the CLI's --json and the console show it."""
    return {
        "id": entry.entry_id,
        "at": entry.at,
        "actor": entry.actor,
        "via": entry.via.value,
        "action": entry.action,
        "targets": list(entry.targets),
        "outcome": entry.outcome.value,
        "reason": entry.reason,
        "detail": dict(entry.detail),
    }
