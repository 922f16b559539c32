"""The console's view of commands: the recent ones with their counts per status, and
cancelling what a command's devices have not run yet (see `storage.sql.command_log`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class CommandSummary:
    command_uuid: str
    request_type: str
    created_at: datetime
    expires_at: datetime | None
    counts: Mapping[str, int]  # as CommandStore.command_counts: queued, pushed, sent, …


class CommandLogStore(Protocol):
    async def recent_commands(
        self, now: datetime, *, limit: int = 50, before: tuple[datetime, str] | None = None
    ) -> list[CommandSummary]:
        """Commands newest first (created_at, then CommandUUID, both descending), each
        with its per-status target counts; `before` (the last one's created_at and UUID)
        continues from a previous page."""

    async def cancel_command(self, command_uuid: str, now: datetime) -> int:
        """Mark this command's targets still queued, sent or NotNow'd (and not expired) as
        cancelled, so no device is offered it again; returns how many. Answered targets
        keep their answer; cancelling twice cancels nothing the second time."""
