"""What a device's answers say about its apps, as `DeviceApp` states.

- InstallApplication: Acknowledged with `State` — Managed is done; Queued, Installing,
  Prompting… mean the device works on it, so it is asked for its ManagedApplicationList at
  once and then by the roll-out's follow-up until the app is Managed or refused. Error
  (or a `RejectionReason`) fails the row with `explain_install_error`'s words; a failure
  that may pass (offline, a download cut off, "Could not validate manifest") is retried
  after `retry_after` until `max_attempts`. NotNow changes nothing: the command stays
  queued, the device is offered it again at its next check-in, and the follow-up pushes it.
- ManagedApplicationList: each app's `Status` moves rows whose install the device accepted
  (Managed, UserRejected → user_declined, Failed…); a managed app that is gone from the
  list, or ManagedButUninstalled, is missing (and installed again by reconciling).
- RemoveApplication: Acknowledged is removed; Error fails the row with the reasons.
- InstalledApplicationList: the version each device reports ("1.2 (45)"), shown as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from orchardist.apps.manifest import explain_install_error
from orchardist.apps.rollout import FIRST_CHECK, Rollout, RolloutPolicy, RolloutStore
from orchardist.apps.states import UNDER_WAY, device_status, moved, storable
from orchardist.storage import TargetStatus
from orchardist.storage.apps import AppState, DeviceApp

S = AppState
# (ErrorDomain, ErrorCode) of failures that may pass: the device was offline, the
# download was cut off or timed out, or it could not fetch the manifest just then.
_TRANSIENT = frozenset(
    {("NSURLErrorDomain", code) for code in (-1001, -1003, -1004, -1005, -1009)}
    | {("DeviceManagement.error", 2604), ("DeviceManagement", 2604)}
)
_USER_INSTALLED = (
    "the user installed the app before it could be managed: it stays theirs, unmanaged "
    "and not updated. Ask the user to delete it; the next roll-out installs ours."
)
_INSTALLED_VERSION_CHARS = 128


class AppResults:
    def __init__(
        self,
        store: RolloutStore,
        rollout: Rollout,
        policy: RolloutPolicy,
        *,
        clock: Callable[[], datetime],
        save: Callable[[list[DeviceApp]], Awaitable[None]],
        gone_missing: Callable[[str], Awaitable[object]],
    ) -> None:
        self.store, self.rollout, self.policy, self.clock = store, rollout, policy, clock
        self.save = save
        self.gone_missing = gone_missing  # reconcile this device: install what it lost

    async def on_result(
        self,
        device_id: str,
        command_uuid: str,
        request_type: str,
        acknowledged: bool,
        result: Mapping[str, Any],
    ) -> None:
        if request_type == "InstallApplication":
            await self._install_answered(device_id, command_uuid, acknowledged, result)
        elif request_type == "RemoveApplication":
            await self._remove_answered(device_id, command_uuid, acknowledged, result)
        elif request_type == "ManagedApplicationList" and acknowledged:
            await self._listed(device_id, result.get("ManagedApplicationList"))
        elif request_type == "InstalledApplicationList" and acknowledged:
            await self._versions(device_id, result)

    async def _install_answered(
        self, device_id: str, uuid: str, acknowledged: bool, result: Mapping[str, Any]
    ) -> None:
        row = await self.store.device_app_by_command(device_id, uuid)
        if row is None:
            return  # not ours, or superseded by a newer command for the app
        now = self.clock()
        if not acknowledged and await self._put_off(device_id, uuid, result, now):
            return
        change = install_answer(row, acknowledged, result, now, self.policy)
        await self.save([change])
        if change.state in UNDER_WAY and change.command_uuid is None:
            await self.rollout.ask_how_it_goes([device_id], now)

    async def _put_off(
        self, device_id: str, uuid: str, result: Mapping[str, Any], now: datetime
    ) -> bool:
        """Whether the answer was NotNow (the hook is told "not acknowledged" for Error and
        NotNow alike; NotNow carries no ErrorChain, and the queue knows for sure)."""
        if result.get("ErrorChain") or result.get("RejectionReason"):
            return False
        for target in await self.store.device_commands(device_id, now):
            if target.command_uuid == uuid:
                return target.status == TargetStatus.NOT_NOW
        return False

    async def _remove_answered(
        self, device_id: str, uuid: str, acknowledged: bool, result: Mapping[str, Any]
    ) -> None:
        row = await self.store.device_app_by_command(device_id, uuid)
        if row is None:
            return
        now = self.clock()
        if acknowledged:
            change = removed(row, now)
        elif await self._put_off(device_id, uuid, result, now):
            return
        else:
            said = explain_install_error(result) or "the device answered Error"
            change = moved(row, S.FAILED, now, command_uuid=None, next_attempt_at=None,
                           error=f"the device did not remove the app: {said}")  # fmt: skip
        await self.save([change])

    async def _listed(self, device_id: str, listed: Any) -> None:
        if not isinstance(listed, dict):
            return
        now = self.clock()
        changes = [
            change
            for row in await self.store.device_apps(device_id=device_id)
            if (change := after_listing(row, listed.get(row.bundle_id), now, self.policy))
        ]
        await self.save(changes)
        if any(change.state == S.MISSING for change in changes):
            await self.gone_missing(device_id)

    async def _versions(self, device_id: str, result: Mapping[str, Any]) -> None:
        # Our rows first: most devices hold few of our apps among thousands, and a large
        # list stays packed (mdm/report_digest) when they hold none.
        rows = await self.store.device_apps(device_id=device_id)
        listed = result.get("InstalledApplicationList") if rows else None
        if not isinstance(listed, list):
            return
        ours = {row.bundle_id for row in rows}
        reported = {
            item["Identifier"]: _version_text(item)
            for item in listed
            if isinstance(item, dict)
            and isinstance(item.get("Identifier"), str)
            and item["Identifier"] in ours
        }
        changes = [
            dataclasses.replace(row, installed_version=reported[row.bundle_id])
            for row in rows
            if reported.get(row.bundle_id) not in (None, row.installed_version)
        ]
        await self.save(changes)


def install_answer(
    row: DeviceApp,
    acknowledged: bool,
    result: Mapping[str, Any],
    now: datetime,
    policy: RolloutPolicy,
) -> DeviceApp:
    """The row after the device answered its InstallApplication (not NotNow)."""
    rejection = result.get("RejectionReason")
    said = result.get("State")
    state = device_status(said)
    if rejection == "AppAlreadyQueued":  # an earlier install is on its way: follow it
        return moved(row, S.QUEUED, now, command_uuid=None, next_attempt_at=now + FIRST_CHECK)
    if rejection == "AppAlreadyInstalled":
        return moved(row, S.USER_INSTALLED, now, command_uuid=None, next_attempt_at=None,
                     error=_USER_INSTALLED)  # fmt: skip
    if not acknowledged or rejection:
        return failed(row, result, now, policy)
    if state == S.MANAGED:
        return managed(row, now)
    if state is None or state in UNDER_WAY or state == S.MISSING:
        return moved(row, state if state in UNDER_WAY else S.QUEUED, now, command_uuid=None,
                     next_attempt_at=now + FIRST_CHECK)  # fmt: skip
    return refused(row, state, str(said), now, policy)


def after_listing(
    row: DeviceApp, item: Any, now: datetime, policy: RolloutPolicy
) -> DeviceApp | None:
    """The row after a ManagedApplicationList in which the app is `item` (None: absent);
    None when it does not change. While an install of ours is unanswered, or a newer
    version waits to be sent, the list speaks of the version the device had: ignored."""
    present = isinstance(item, dict)
    said = item.get("Status") if isinstance(item, dict) else None
    status = device_status(said)
    if row.state == S.REMOVING:
        return removed(row, now) if not present else None
    if row.command_uuid is not None or row.state in (S.UPDATE_PENDING, S.REMOVED):
        return None
    if row.state in UNDER_WAY:
        if status is None or status == S.MISSING or status == row.state:
            return None  # not listed yet, or no news: keep asking
        if status == S.MANAGED:
            return managed(row, now)
        if status in UNDER_WAY:
            return moved(row, status, now, next_attempt_at=now + FIRST_CHECK)
        return refused(row, status, str(said), now, policy)
    if row.state == S.MANAGED and (not present or status == S.MISSING):
        return moved(row, S.MISSING, now, next_attempt_at=None)
    if row.state == S.MISSING and status == S.MANAGED:
        return moved(row, S.MANAGED, now, next_attempt_at=None)
    return None


def managed(row: DeviceApp, now: datetime) -> DeviceApp:
    return moved(row, S.MANAGED, now, installed_version_id=row.desired_version_id,
                 command_uuid=None, next_attempt_at=None)  # fmt: skip


def removed(row: DeviceApp, now: datetime) -> DeviceApp:
    return moved(row, S.REMOVED, now, desired_version_id=None, installed_version_id=None,
                 installed_version=None, command_uuid=None, next_attempt_at=None)  # fmt: skip


def failed(
    row: DeviceApp, result: Mapping[str, Any], now: datetime, policy: RolloutPolicy
) -> DeviceApp:
    """Failed with the device's reasons in words; retried later when they may pass."""
    said = explain_install_error(result) or "the device answered Error without a reason"
    retry = _transient(result) and row.attempts < policy.max_attempts
    return moved(row, S.FAILED, now, command_uuid=None, error=said,
                 next_attempt_at=now + policy.retry_after if retry else None)  # fmt: skip


def refused(
    row: DeviceApp, state: AppState, said: str, now: datetime, policy: RolloutPolicy
) -> DeviceApp:
    """The device reports the install Failed, declined by its user, or the app installed
    by the user before we could manage it."""
    if state == S.USER_INSTALLED:
        error = _USER_INSTALLED
    else:
        error = explain_install_error({"State": said}) or f"the device reports {said}"
    retry = state == S.FAILED and row.attempts < policy.max_attempts
    return moved(row, state, now, command_uuid=None, error=error,
                 next_attempt_at=now + policy.retry_after if retry else None)  # fmt: skip


def _transient(result: Mapping[str, Any]) -> bool:
    chain = result.get("ErrorChain")
    links = chain if isinstance(chain, list) else []
    return any(
        isinstance(link, dict)
        and (str(link.get("ErrorDomain")), link.get("ErrorCode")) in _TRANSIENT
        for link in links
    )


def _version_text(item: Mapping[str, Any]) -> str:
    """ "1.2 (45)" from ShortVersion and Version, or whichever the device sent."""
    short, build = (_text(item.get(key)) for key in ("ShortVersion", "Version"))
    text = f"{short} ({build})" if short and build and short != build else short or build
    return storable(text or "?")[:_INSTALLED_VERSION_CHARS]


def _text(value: Any) -> str:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
