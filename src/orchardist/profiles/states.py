"""A device's profile state rows and the commands that move them: the helpers the library
(orchardist.profiles.library) and the paced delivery share."""

from __future__ import annotations

import plistlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from orchardist.mdm.commands import new_command
from orchardist.storage import NewCommand
from orchardist.storage.profile_work import WantedInstall
from orchardist.storage.profiles import DeviceProfile, ProfileState

# A state that has not moved for this long is shown as overdue, not left silent.
OVERDUE_AFTER = timedelta(hours=24)
HOLDING = (ProfileState.PENDING, ProfileState.INSTALLED, ProfileState.FAILED)
_KEEP = object()


def install_command(payload: bytes) -> NewCommand:
    """An InstallProfile carrying `payload` (signed, encrypted to its device), not queued."""
    command = new_command("InstallProfile", {"Payload": payload})
    return NewCommand(command.command_uuid, "InstallProfile", plist(command.as_plist()))


def settled(row: DeviceProfile, version: int) -> bool:
    """Given (or refused) at this version already; a scheduled install is not given yet."""
    scheduled = row.state == ProfileState.PENDING and row.command_uuid is None
    return row.desired_version == version and row.state in HOLDING and not scheduled


def scheduled(want: WantedInstall, now: datetime) -> DeviceProfile:
    """The row that leaves `want` to the paced delivery: pending, no command yet."""
    installed = want.row.installed_version if want.row else None
    return DeviceProfile(want.device_id, want.identifier, want.version, installed,
                         ProfileState.PENDING, None, None, now)  # fmt: skip


def overdue(row: DeviceProfile, now: datetime) -> bool:
    """Pending or removing for too long: shown, not silent."""
    waiting = row.state in (ProfileState.PENDING, ProfileState.REMOVING)
    return waiting and now - row.updated_at > OVERDUE_AFTER


def moved(
    row: DeviceProfile,
    state: ProfileState,
    now: datetime,
    *,
    desired: object = _KEEP,
    installed: object = _KEEP,
    command_uuid: object = _KEEP,
    error: str | None = None,
) -> DeviceProfile:
    """The row in a new state; _KEEP leaves a field as it was."""

    def pick(value: object, current: Any) -> Any:
        return current if value is _KEEP else value

    return DeviceProfile(
        device_id=row.device_id,
        identifier=row.identifier,
        desired_version=pick(desired, row.desired_version),
        installed_version=pick(installed, row.installed_version),
        state=state,
        command_uuid=pick(command_uuid, row.command_uuid),
        error=error,
        updated_at=now,
    )


def error_chain(result: Mapping[str, Any]) -> str:
    """A failed command's ErrorChain in words ("MCProfileErrorDomain 1009: … ← …"), as
    each device state's `error` keeps it (the provisioning library's too)."""
    chain = result.get("ErrorChain")
    if not isinstance(chain, list) or not chain:
        return "the device answered Error"
    parts = []
    for item in chain:
        if isinstance(item, dict):
            text = item.get("USEnglishDescription") or item.get("LocalizedDescription") or ""
            parts.append(f"{item.get('ErrorDomain')} {item.get('ErrorCode')}: {text}".strip())
    return " ← ".join(parts)[:2000]


def plist(value: dict[str, Any]) -> bytes:
    return plistlib.dumps(value)
