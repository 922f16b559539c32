"""The audit log's records and storage seam: who did what to which targets, when, and how it
went. Entries are only ever added; nothing here updates or deletes one."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Outcome(enum.StrEnum):
    OK = "ok"
    DENIED = "denied"  # the actor's role may not do this: nothing was tried
    FAILED = "failed"  # tried and refused (bad input, unknown target…): `reason` says why


class Via(enum.StrEnum):
    API = "api"
    CONSOLE = "console"
    CLI = "cli"
    CATALOG = "catalog"  # a directory user in the app catalog (/apps)


@dataclass(frozen=True)
class AuditRecord:
    """An entry to add. `detail` holds JSON values only and never a secret (the AuditLog
    service cleans it before it gets here)."""

    at: datetime
    actor: str
    via: Via
    action: str
    targets: tuple[str, ...]
    outcome: Outcome
    reason: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class AuditEntry(AuditRecord):
    """An entry as stored. `entry_id` grows with every entry added: newest first is the
    highest id first, and it is the keyset cursor for paging."""

    entry_id: int


@dataclass(frozen=True)
class AuditQuery:
    """Which entries, newest first. Every filter given must match; `target` matches an entry
    naming it among its targets; `since` is inclusive, `until` exclusive; `before` (an
    entry_id) continues from the last page."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 100


class AuditStore(Protocol):
    async def add_audit_entry(self, record: AuditRecord) -> int:
        """Store it (its targets in their order) and return its entry_id."""

    async def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """At most query.limit entries matching the query, highest entry_id first."""
