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
from orchardist.storage.scopes import AllEnrolled, Devices, InGroup, Scope

# Apple, "EraseDevice": irreversible. Callers must confirm explicitly.
DESTRUCTIVE = frozenset({"EraseDevice"})


class UnknownDevicesError(LookupError):
    def __init__(self, device_ids: Sequence[str]) -> None:
        self.device_ids = tuple(device_ids)
        shown = ", ".join(self.device_ids[:10])
        more = f" and {len(self.device_ids) - 10} more" if len(self.device_ids) > 10 else ""
        super().__init__(f"unknown device {shown}{more}")


class UnknownGroupError(LookupError):
    """The group named as targets has no members (a static group exists while it has)."""


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
    targets: Sequence[str] | InGroup | None,
    *,
    now: datetime,
    confirmed: bool = False,
    priority: int = 0,
    expires_at: datetime | None = None,
) -> Queued:
    """Queue for `targets`: these devices, a group's enrolled members, or (None) every
    enrolled device; the last two are resolved by the database, however many there are.
    CommandError for bad parameters, UnknownDevicesError for targets never enrolled,
    UnknownGroupError for a group that does not exist, ConfirmationRequiredError for an
    unconfirmed destructive command; nothing is queued then."""
    if request_type in DESTRUCTIVE and not confirmed:
        raise ConfirmationRequiredError(f"{request_type} cannot be undone: confirm it explicitly")
    command = new_command(request_type, params)
    scope = await _scope(store, targets)
    record = NewCommand(
        command.command_uuid,
        request_type,
        plistlib.dumps(command.as_plist()),
        priority=priority,
        expires_at=expires_at,
    )
    try:
        return Queued(command, await store.enqueue_to(record, scope, now))
    except LookupError as exc:  # only a group's scope looks anything up
        raise UnknownGroupError(str(exc)) from exc


async def _scope(store: MdmStorage, targets: Sequence[str] | InGroup | None) -> Scope:
    if targets is None:
        return AllEnrolled()
    if isinstance(targets, InGroup):
        return targets
    device_ids = list(dict.fromkeys(targets))
    known = set(await store.device_ids(device_ids))
    unknown = [device_id for device_id in device_ids if device_id not in known]
    if unknown:
        raise UnknownDevicesError(unknown)
    return Devices(device_ids)
