"""The paced roll-out: InstallApplication to the devices that should get a version, at most
`per_minute` devices a minute, and the follow-up of every install under way.

Reconciling (assignments, a new version, an enrollment) only marks rows `update_pending`
with `next_attempt_at` now; `Rollout.run_pass(now)` sends them. Each pass:

1. follows up rows under way whose `next_attempt_at` has come:
   - our command is still unanswered (queued, sent, or put off with NotNow): the device is
     pushed again; the command stays the one in the queue (never a second copy);
   - the command expired unanswered (its manifest link would have lapsed: it expires a
     little before the link does) or was cancelled by a re-enrollment: a new one is sent
     through the pace, until `max_attempts` commands went unanswered — then the row fails
     saying so;
   - the device accepted the install and works on it (Queued, Installing, Prompting): it
     is asked for its ManagedApplicationList, first after a minute, then less often the
     longer the state lasts (up to every six hours);
2. sends what is due — `update_pending` rows, then failed rows whose failure may pass
   (offline, a download cut off) and whose retry time has come — as far as the pace
   allows: a token bucket of `per_minute` tokens refilled continuously, full at start.

One InstallApplication is queued per app version per pass for all its devices
(ManifestURL from `AppUrls.manifest_url`, ManagementFlags 1: the app goes when the MDM
profile goes; protocol notes §3i). Of all the processes on one database (`serve --workers
N`, several hosts), the one holding the lease "apps.rollout" runs the passes
(orchardist.jobs.leases), so the pace holds for the server as a whole and no row is sent
twice by two processes.
"""

from __future__ import annotations

import plistlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from orchardist.apps.manifest import explain_install_error
from orchardist.apps.states import UNDER_WAY, moved, rescheduled
from orchardist.apps.urls import AppUrls
from orchardist.mdm.commands import new_command
from orchardist.storage import ANSWERED, MdmStorage, NewCommand, PushStore, TargetStatus
from orchardist.storage.apps import AppState, AppStore, DeviceApp

S = AppState
BATCH = 500  # rows read and written per step
MANAGEMENT_FLAGS = 1  # remove the app when the MDM profile is removed
FIRST_CHECK = timedelta(minutes=1)  # after an accepted install, ask how it goes
LONGEST_CHECK = timedelta(hours=6)
# A queued install expires this long before its manifest link, so no device is handed a
# link that lapses while it downloads.
LINK_MARGIN = timedelta(minutes=5)
_PENDING = frozenset({TargetStatus.QUEUED, TargetStatus.SENT, TargetStatus.NOT_NOW})


class RolloutStore(AppStore, MdmStorage, PushStore, Protocol):
    """The storage roles the roll-out uses."""


@dataclass(frozen=True)
class RolloutPolicy:
    per_minute: int  # devices sent an install per minute
    retry_after: timedelta  # an unanswered or transiently failed install is tried again
    max_attempts: int  # installs sent to one device for one version before it fails


class Pacer:
    """A token bucket: `per_minute` tokens, refilled continuously, full at start. Time
    going backwards (a test's clock, a clock step) refills nothing."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.tokens = float(per_minute)
        self.last: datetime | None = None

    def available(self, now: datetime) -> int:
        if self.last is not None and now > self.last:
            refill = (now - self.last).total_seconds() * self.per_minute / 60
            self.tokens = min(float(self.per_minute), self.tokens + refill)
        if self.last is None or now > self.last:
            self.last = now
        return int(self.tokens + 1e-9)  # 15 s at 4 a minute is one token, not 0.999…

    def spend(self, count: int) -> None:
        self.tokens = max(0.0, self.tokens - count)


class Rollout:
    def __init__(
        self,
        store: RolloutStore,
        urls: AppUrls,
        policy: RolloutPolicy,
        *,
        clock: Callable[[], datetime],
        queued: Callable[[], None],
    ) -> None:
        self.store, self.urls, self.policy, self.clock = store, urls, policy, clock
        self.queued = queued  # something was queued or a push requested: wake the pusher
        self.pacer = Pacer(policy.per_minute)

    async def run_pass(self, now: datetime | None = None) -> int:
        """Follow up, then send what is due within the pace; how many devices were sent an
        InstallApplication."""
        now = now or self.clock()
        await self.follow_up(now)
        budget, sent = self.pacer.available(now), 0
        for state in (S.UPDATE_PENDING, S.FAILED):
            while sent < budget:
                rows = await self.store.due_device_apps(now, min(BATCH, budget - sent),
                                                        state=state)  # fmt: skip
                if not rows:
                    break
                sent += await self.send(rows, now)
        self.pacer.spend(sent)
        return sent

    async def send(self, rows: Sequence[DeviceApp], now: datetime) -> int:
        """InstallApplication for each row's desired version (one command per version); a
        device no longer enrolled lost its managed apps with its MDM profile: removed."""
        enrolled = set(await self.store.device_ids([r.device_id for r in rows], enrolled=True))
        changes: list[DeviceApp] = []
        by_version: dict[tuple[str, int], list[DeviceApp]] = defaultdict(list)
        for row in rows:
            if row.device_id not in enrolled:
                changes.append(moved(row, S.REMOVED, now, desired_version_id=None,
                                     installed_version_id=None, command_uuid=None,
                                     next_attempt_at=None))  # fmt: skip
            elif row.desired_version_id is None:
                changes.append(rescheduled(row, None))
            else:
                by_version[(row.bundle_id, row.desired_version_id)].append(row)
        await self.store.save_device_apps(changes)
        sent = 0
        for (bundle_id, version_id), group in by_version.items():
            record = self.install_command(bundle_id, version_id, now)
            rows = [self.sent(row, record.command_uuid, now) for row in group]
            # The command and its rows in one transaction: killed between the two, the
            # next pass would send this version to these devices again.
            await self.store.queue_app_command(record, rows, now)
            sent += len(group)
        if sent:
            self.queued()
        return sent

    def sent(self, row: DeviceApp, command_uuid: str, now: datetime) -> DeviceApp:
        """The row once an InstallApplication for its desired version is queued."""
        return moved(row, S.QUEUED, now, command_uuid=command_uuid, attempts=row.attempts + 1,
                     next_attempt_at=now + self.policy.retry_after)  # fmt: skip

    def install_command(self, bundle_id: str, version_id: int, now: datetime) -> NewCommand:
        """One InstallApplication of this version, not queued yet."""
        params = {"ManifestURL": self.urls.manifest_url(bundle_id, version_id),
                  "ManagementFlags": MANAGEMENT_FLAGS}  # fmt: skip
        life = self.urls.ttl - LINK_MARGIN if self.urls.ttl > 2 * LINK_MARGIN else self.urls.ttl
        return _command("InstallApplication", params, now + life)

    def removal_command(self, bundle_id: str) -> NewCommand:
        """One RemoveApplication of this app, not queued yet."""
        return _command("RemoveApplication", {"Identifier": bundle_id})

    async def remove(self, device_ids: Sequence[str], bundle_id: str, now: datetime) -> str:
        return await self._queue("RemoveApplication", {"Identifier": bundle_id}, device_ids, now)

    async def ask_how_it_goes(self, device_ids: Iterable[str], now: datetime) -> None:
        """ManagedApplicationList from these devices, good until the next check is due, so
        that a device that is away never collects a pile of them."""
        devices = sorted(set(device_ids))
        if devices:
            await self._queue("ManagedApplicationList", {}, devices, now, now + FIRST_CHECK)

    async def _queue(
        self,
        request_type: str,
        params: dict[str, Any],
        device_ids: Sequence[str],
        now: datetime,
        expires_at: datetime | None = None,
    ) -> str:
        record = _command(request_type, params, expires_at)
        await self.store.enqueue(record, device_ids, now)
        self.queued()
        return record.command_uuid

    # -- following up

    async def follow_up(self, now: datetime) -> None:
        for state in sorted(UNDER_WAY):
            while rows := await self.store.due_device_apps(now, BATCH, state=state):
                await self._follow(rows, now)

    async def _follow(self, rows: Sequence[DeviceApp], now: datetime) -> None:
        changes: list[DeviceApp] = []
        by_command: dict[str, list[DeviceApp]] = defaultdict(list)
        for row in rows:
            if row.command_uuid is not None:
                by_command[row.command_uuid].append(row)
        repush: list[str] = []
        for uuid, group in by_command.items():
            targets = {t.device_id: t for t in await self.store.command_targets(uuid, now)}
            for row in group:
                target = targets.get(row.device_id)
                status = target.status if target is not None else None
                if status in _PENDING:
                    repush.append(row.device_id)
                    changes.append(rescheduled(row, now + self.policy.retry_after))
                elif target is not None and status in ANSWERED:
                    changes.append(self._answered_unseen(row, status, target.result, now))
                else:  # expired unanswered, cancelled by a re-enrollment, or gone
                    changes.append(self._unanswered(row, now))
        accepted = [row for row in rows if row.command_uuid is None]
        await self.ask_how_it_goes([row.device_id for row in accepted], now)
        changes.extend(rescheduled(row, now + check_interval(now - row.updated_at))
                       for row in accepted)  # fmt: skip
        if repush:
            await self.store.request_push(repush, now)
            self.queued()
        await self.store.save_device_apps(changes)

    def _unanswered(self, row: DeviceApp, now: datetime) -> DeviceApp:
        if row.attempts < self.policy.max_attempts:
            return moved(row, S.UPDATE_PENDING, now, command_uuid=None, next_attempt_at=now)
        return moved(row, S.FAILED, now, command_uuid=None, next_attempt_at=None, error=(
            f"the device did not answer {row.attempts} install(s) in time (offline?). It "
            "gets the app again with the next version, or assign it again"
        ))  # fmt: skip

    def _answered_unseen(
        self, row: DeviceApp, status: TargetStatus | None, result: bytes | None, now: datetime
    ) -> DeviceApp:
        """An answer the results hook never saw (the server stopped in between): accepted
        means ask the device; an error fails the row with the device's reasons."""
        if status == TargetStatus.ACKNOWLEDGED:
            return moved(row, row.state, now, command_uuid=None, next_attempt_at=now)
        try:
            answer = plistlib.loads(result) if result else {}
        except Exception:  # a stored answer we cannot read: say so rather than stop
            answer = {}
        said = explain_install_error(answer) if isinstance(answer, dict) else None
        return moved(row, S.FAILED, now, command_uuid=None, next_attempt_at=None,
                     error=said or "the device answered Error")  # fmt: skip


def _command(
    request_type: str, params: dict[str, Any], expires_at: datetime | None = None
) -> NewCommand:
    command = new_command(request_type, params)
    body = plistlib.dumps(command.as_plist())
    return NewCommand(command.command_uuid, request_type, body, expires_at=expires_at)


def check_interval(in_state: timedelta) -> timedelta:
    """How long until a device working on an install is asked again: as long as it has
    been at it, between a minute and six hours."""
    return min(max(in_state, FIRST_CHECK), LONGEST_CHECK)
