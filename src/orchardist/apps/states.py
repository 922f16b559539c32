"""One device's state for one app (`DeviceApp`) and the ways it moves.

The row's fields carry the roll-out's bookkeeping:
- `command_uuid` is set while an InstallApplication or RemoveApplication of ours waits for
  the device's answer, and cleared once it answered: so "an answer is due" and "the device
  is installing on its own" are told apart;
- `next_attempt_at` is when the roll-out pass looks at the row again (send it, re-push it,
  ask the device how its install goes, retry it); None: nothing to do until something
  happens;
- `attempts` counts InstallApplication commands sent for the desired version;
- `updated_at` is when the state last changed (rescheduling keeps it), so the time spent
  in a state sets how often the device is asked about it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchardist.storage.apps import AppState, DeviceApp

S = AppState
# An install under way: sent, or accepted by the device and not finished.
UNDER_WAY = frozenset({S.QUEUED, S.INSTALLING, S.PROMPTING})
# Given, being given, or refused by the device or its user: reconciling leaves these
# alone unless a newer version is wanted.
HOLDING = frozenset({S.UPDATE_PENDING, *UNDER_WAY, S.MANAGED, S.USER_DECLINED,
                     S.USER_INSTALLED, S.FAILED})  # fmt: skip
# Rows whose device may hold a managed copy of the app (to remove when unassigned).
MAY_HOLD = frozenset({*UNDER_WAY, S.MANAGED, S.MISSING})

# The device's words for an app's state: InstallApplication's `State` and
# ManagedApplicationList's `Status` (Apple's application.install.yaml and
# application.managed.list.yaml share the list). "Unknown" tells nothing: absent here.
DEVICE_STATUS: Mapping[str, AppState] = {
    "Queued": S.QUEUED,
    "NeedsRedemption": S.QUEUED,
    "Redeeming": S.INSTALLING,
    "ValidatingPurchase": S.INSTALLING,
    "ValidatingUpdate": S.INSTALLING,
    "Updating": S.INSTALLING,
    "Installing": S.INSTALLING,
    "Prompting": S.PROMPTING,
    "PromptingForLogin": S.PROMPTING,
    "PromptingForUpdate": S.PROMPTING,
    "PromptingForUpdateLogin": S.PROMPTING,
    "PromptingForManagement": S.PROMPTING,
    "Managed": S.MANAGED,
    "ManagedButUninstalled": S.MISSING,
    "UserInstalledApp": S.USER_INSTALLED,
    "UserRejected": S.USER_DECLINED,
    "UpdateRejected": S.USER_DECLINED,
    "ManagementRejected": S.USER_DECLINED,
    "Failed": S.FAILED,
}


def device_status(value: Any) -> AppState | None:
    """The state a device's Status/State string means; None for Unknown or anything else."""
    return DEVICE_STATUS.get(value) if isinstance(value, str) else None


def wanted(device_id: str, bundle_id: str, version_id: int, now: datetime) -> DeviceApp:
    """A device that should get a version it has no row for yet: due now."""
    return DeviceApp(
        device_id=device_id,
        bundle_id=bundle_id,
        desired_version_id=version_id,
        installed_version_id=None,
        installed_version=None,
        state=S.UPDATE_PENDING,
        command_uuid=None,
        error=None,
        attempts=0,
        next_attempt_at=now,
        updated_at=now,
    )


def to_install(row: DeviceApp, version_id: int, now: datetime) -> DeviceApp:
    """The row waiting for the roll-out to send `version_id` (attempts start again)."""
    return moved(row, S.UPDATE_PENDING, now, desired_version_id=version_id, command_uuid=None,
                 attempts=0, next_attempt_at=now)  # fmt: skip


def moved(row: DeviceApp, state: AppState, now: datetime, **changes: Any) -> DeviceApp:
    """The row in `state` since `now`, with `changes`; the error is cleared unless given."""
    error = changes.setdefault("error", None)
    if error is not None:
        changes["error"] = storable(error)
    return dataclasses.replace(row, state=state, updated_at=now, **changes)


def rescheduled(row: DeviceApp, at: datetime | None) -> DeviceApp:
    """The same state (and the same `updated_at`), looked at again `at`."""
    return dataclasses.replace(row, next_attempt_at=at)


def storable(text: str) -> str:
    """Device text every backend stores: lone surrogates (a binary plist's UTF-16 may hold
    them) become "?"; FittedString columns drop NUL and cut the length."""
    return text.encode("utf-8", "replace").decode("utf-8")
