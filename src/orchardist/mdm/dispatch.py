"""Queue a command for devices: validate it, resolve the targets, enqueue. One entry point
for the API, the CLI and, later, the console."""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchardist.mdm.commands import Command, new_command
from orchardist.storage import MdmStorage, NewCommand

# Apple, "EraseDevice": irreversible. Callers must confirm explicitly.
DESTRUCTIVE = frozenset({"EraseDevice"})


class UnknownDevicesError(LookupError):
    def __init__(self, device_ids: Sequence[str]) -> None:
        self.device_ids = tuple(device_ids)
        shown = ", ".join(self.device_ids[:10])
        more = f" and {len(self.device_ids) - 10} more" if len(self.device_ids) > 10 else ""
        super().__init__(f"unknown device {shown}{more}")


class ConfirmationRequiredError(ValueError):
    """A destructive command was not confirmed."""


@dataclass(frozen=True)
class Queued:
    command: Command
    targets: int


async def queue_command(
    store: MdmStorage,
    request_type: str,
    params: Mapping[str, Any],
    targets: Sequence[str] | None,
    *,
    now: datetime,
    confirmed: bool = False,
    priority: int = 0,
    expires_at: datetime | None = None,
) -> Queued:
    """Queue for `targets` (None: every enrolled device). CommandError for bad parameters,
    UnknownDevicesError for targets never enrolled, ConfirmationRequiredError for an
    unconfirmed destructive command; nothing is queued then."""
    if request_type in DESTRUCTIVE and not confirmed:
        raise ConfirmationRequiredError(f"{request_type} cannot be undone: confirm it explicitly")
    command = new_command(request_type, params)
    if targets is None:
        device_ids = await store.device_ids(enrolled=True)
    else:
        device_ids = list(dict.fromkeys(targets))
        known = set(await store.device_ids(device_ids))
        unknown = [device_id for device_id in device_ids if device_id not in known]
        if unknown:
            raise UnknownDevicesError(unknown)
    record = NewCommand(
        command.command_uuid,
        request_type,
        plistlib.dumps(command.as_plist()),
        priority=priority,
        expires_at=expires_at,
    )
    return Queued(command, await store.enqueue(record, device_ids, now))
