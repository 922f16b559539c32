"""The in-house app library: uploads, versions, assignments and reconciliation.

An upload is streamed into the content-addressed `FileStore`, read (`read_ipa`, in a
thread), judged (`upload_verdict`) and stored as the next version of its bundle id, its
icon beside it in the file store. Anything refused leaves nothing behind: the file is
deleted unless another version is that very file.

A device's desired state is the set of apps assigned to it (directly, through a static
group, or to all), each at its latest version. `reconcile` compares that with each
device's row and marks the difference: a missing or older version becomes
`update_pending` for the paced roll-out (`orchardist.apps.rollout`) to send, an app no
longer assigned gets RemoveApplication at once. So a new version reaches every device
that should have it with no other step, at the configured pace. A managed install from
the app catalog (`install_on`) assigns the app to that device, so it is kept up to date
and stays until unassigned; it is sent at once, outside the pace.

Results (`orchardist.apps.results`) move each device's state; `run` is `serve`'s loop.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from orchardist.apps.checks import upload_verdict
from orchardist.apps.files import FileStore, StoredFile
from orchardist.apps.ipa import AppBundle, IpaError, read_ipa
from orchardist.apps.provisioning import (
    EXPIRY_WARNING_DAYS,
    ProvisioningProfile,
    days_left,
    describe_expiry,
)
from orchardist.apps.results import AppResults
from orchardist.apps.rollout import Rollout, RolloutPolicy, RolloutStore
from orchardist.apps.states import HOLDING, MAY_HOLD, moved, storable, to_install, wanted
from orchardist.apps.urls import AppUrls
from orchardist.polling import Wake, poll_forever
from orchardist.profiles.targets import check_devices, scope, targets, wanted_versions
from orchardist.storage.apps import (
    AppState,
    AppVersion,
    AppVersionExistsError,
    DeviceApp,
    NewAppVersion,
    StoredApp,
)
from orchardist.storage.profiles import ProfileStore, TargetKind

log = structlog.get_logger("orchardist.apps")
S = AppState
MAX_ICON_BYTES = 4 * 1024 * 1024
TICK_SECONDS = 5.0  # how often `serve` runs a roll-out pass when nothing wakes it
RECONCILE_SECONDS = 300.0  # how often it reconciles (a group's new members get its apps)
_MAX_VERSION_CHARS = 64  # the store's short_version and build columns
_MAX_FAMILIES = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LibraryStore(RolloutStore, ProfileStore, Protocol):
    """The storage roles the app library uses (groups come from the profile store)."""


class AppRejectedError(ValueError):
    """An upload we will not store; `problems` say why, in words an admin can act on."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems[:10]))


class AppExistsError(AppRejectedError):
    """This short version and build of the app is uploaded already (replace to upload it
    again)."""

    def __init__(self, existing: AppVersion) -> None:
        super().__init__([str(AppVersionExistsError(existing))])
        self.existing = existing


@dataclass(frozen=True)
class Uploaded:
    version: AppVersion
    warnings: tuple[str, ...]
    replaced: bool  # the same short version and build was there: its row took this file
    updating: int  # devices that get this version through the roll-out


@dataclass
class Reconciled:
    installs: int = 0  # devices marked to get a version (sent at the roll-out's pace)
    removals: int = 0  # devices sent RemoveApplication


class AppLibrary:
    def __init__(
        self,
        store: LibraryStore,
        files: FileStore,
        urls: AppUrls,
        policy: RolloutPolicy,
        *,
        max_upload_bytes: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.files, self.urls, self.clock = store, files, urls, clock
        self.max_upload_bytes = max_upload_bytes
        self.on_queued: Callable[[], None] | None = None  # wakes the pusher (wiring sets it)
        # Told of each new version's embedded provisioning profile: the provisioning library
        # keeps it, so a renewal uploaded later reaches the phones this app brought it to.
        self.on_embedded_profile: Callable[[ProvisioningProfile], Awaitable[None]] | None = None
        self.rollout = Rollout(store, urls, policy, clock=clock, queued=self._queued)
        self.results = AppResults(store, self.rollout, policy, clock=clock,
                                  save=self.store.save_device_apps,
                                  gone_missing=self._reinstall)  # fmt: skip
        self.on_result = self.results.on_result  # the MdmService hook (orchardist.apps.results)
        self._wake = Wake()
        self._turns: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    def wake(self) -> None:
        """Something is due: the roll-out loop looks now, not at its next tick."""
        self._wake.set()

    # -- uploads

    async def upload(
        self,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        replace: bool = False,
        expect_bundle_id: str | None = None,
    ) -> Uploaded:
        """Store an .ipa streamed in `chunks` as a version of its app. AppRejectedError
        (AppExistsError for a version uploaded before) says why not; FileTooLargeError past
        the size limit; FileStoreError for a disk problem. Nothing is kept on failure."""
        stored = await self.receive(chunks)
        return await self.add(stored, replace=replace, expect_bundle_id=expect_bundle_id)

    async def receive(self, chunks: AsyncIterable[bytes] | Iterable[bytes]) -> StoredFile:
        """Stream the file into the file store (the first half of `upload`, for callers
        that learn `replace` only once the body is read)."""
        return await self.files.put(chunks, self.max_upload_bytes)

    async def add(
        self, stored: StoredFile, *, replace: bool = False, expect_bundle_id: str | None = None
    ) -> Uploaded:
        """The second half of `upload`: read the stored file, judge it, record it. Two
        uploads of the same bytes take turns here (this process): the second then sees the
        first's version."""
        now = self.clock()
        async with self._turn(stored.sha256):
            made = [stored.sha256]
            try:
                bundle = await asyncio.to_thread(self._read, stored.sha256)
                verdict = upload_verdict(bundle, now)
                problems = [*_mismatch(bundle, expect_bundle_id), *verdict.refusals,
                            *_unstorable(bundle)]  # fmt: skip
                if problems:
                    raise AppRejectedError(problems)
                icon = await self._store_icon(bundle.icon_png)
                made.extend([icon] if icon else [])
                before = await self.store.find_app_version(
                    bundle.bundle_id, bundle.short_version, bundle.build
                )
                version = await self._record(_new_version(bundle, stored, icon), now, replace)
            except BaseException:
                await self._forget_files(made)
                raise
        resend = None
        if before is not None:
            await self._forget_files([before.sha256, before.icon_sha256])
            app = await self.store.get_app(bundle.bundle_id)
            if app is not None and app.latest_version_id == version.version_id:
                resend = bundle.bundle_id  # devices at that version get the new file
        if bundle.provisioning is not None and self.on_embedded_profile is not None:
            await self.on_embedded_profile(bundle.provisioning)
        done = await self.reconcile(resend=resend)
        log.info("app_uploaded", bundle_id=version.bundle_id, version=version.short_version,
                 version_id=version.version_id, updating=done.installs)  # fmt: skip
        return Uploaded(version, verdict.warnings, before is not None, done.installs)

    def _read(self, sha256: str) -> AppBundle:
        with self.files.open(sha256) as handle:
            try:
                return read_ipa(handle)
            except IpaError as exc:
                raise AppRejectedError([str(exc)]) from exc

    async def _record(self, new: NewAppVersion, now: datetime, replace: bool) -> AppVersion:
        try:
            return await self.store.add_app_version(new, now, replace=replace)
        except AppVersionExistsError as exc:
            raise AppExistsError(exc.existing) from exc

    async def _store_icon(self, png: bytes | None) -> str | None:
        if png is None:
            return None
        return (await self.files.put([png], MAX_ICON_BYTES)).sha256

    async def _forget_files(self, hashes: Iterable[str | None]) -> None:
        """Delete these files unless a version or an app still names them."""
        for sha256 in {h for h in hashes if h is not None}:
            if not await self.store.file_referenced(sha256):
                await self.files.delete(sha256)

    @asynccontextmanager
    async def _turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._turns.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._turns[key]

    # -- assignment

    async def assign(
        self,
        bundle_id: str,
        *,
        devices: Sequence[str] = (),
        groups: Sequence[str] = (),
        everyone: bool = False,
        assigned: bool = True,
    ) -> Reconciled:
        """Add (or take away) assignments, then reconcile. LookupError: no such app, or
        unknown devices (then nothing changes)."""
        if await self.store.get_app(bundle_id) is None:
            raise LookupError(f"no app {bundle_id}")
        await check_devices(self.store, devices)
        for kind, named in targets(devices, groups, everyone):
            await self.store.set_app_assignments(bundle_id, kind, named, assigned=assigned)
        return await self.reconcile()

    async def install_on(self, bundle_id: str, device_id: str) -> str:
        """The catalog's managed install: the app is assigned to this device and its
        latest version sent at once (outside the pace); the InstallApplication's UUID.
        LookupError: no such app, or the device is not enrolled."""
        app = await self.store.get_app(bundle_id)
        if app is None:
            raise LookupError(f"no app {bundle_id}")
        if not await self.store.device_ids([device_id], enrolled=True):
            raise LookupError(f"device {device_id} is not enrolled")
        await self.store.set_app_assignments(bundle_id, TargetKind.DEVICE, [device_id],
                                             assigned=True)  # fmt: skip
        now = self.clock()
        found = await self.store.device_apps(device_id=device_id, bundle_id=bundle_id)
        row = wanted(device_id, bundle_id, app.latest_version_id, now)
        if found and found[0].desired_version_id == app.latest_version_id:
            row = found[0]  # attempts go on counting
        elif found:
            row = to_install(found[0], app.latest_version_id, now)
        record = self.rollout.install_command(bundle_id, app.latest_version_id, now)
        sent = self.rollout.sent(row, record.command_uuid, now)
        await self.store.queue_app_command(record, [sent], now)  # both or neither
        self.rollout.queued()
        return record.command_uuid

    async def remove(self, bundle_id: str) -> Reconciled:
        """Forget the app (versions, assignments, device rows, files); devices that may
        hold it get RemoveApplication. LookupError: no such app."""
        app = await self.store.get_app(bundle_id)
        if app is None:
            raise LookupError(f"no app {bundle_id}")
        versions = await self.store.app_versions(bundle_id)
        rows = await self.store.device_apps(bundle_id=bundle_id)
        candidates = [r.device_id for r in rows if r.state != S.REMOVED and _may_hold(r)]
        holders = await self.store.device_ids(candidates, enrolled=True) if candidates else []
        if holders:
            await self.rollout.remove(holders, bundle_id, self.clock())
        await self.store.delete_app(bundle_id)
        files = [app.icon_sha256, *(h for v in versions for h in (v.sha256, v.icon_sha256))]
        await self._forget_files(files)
        return Reconciled(removals=len(holders))

    # -- reconciliation

    async def desired(self, only: str | None = None) -> dict[str, dict[str, int]]:
        """enrolled device (or only this one) → {bundle id: latest version id}."""
        assignments = await self.store.app_assignments()
        enrolled, groups = await scope(self.store, assignments, only)
        if not assignments:
            return {device: {} for device in enrolled}
        latest = {app.bundle_id: app.latest_version_id for app in await self.store.list_apps()}
        return wanted_versions(assignments, latest, enrolled, groups)

    async def reconcile(self, only: str | None = None, *, resend: str | None = None) -> Reconciled:
        """Mark what each device (or only this one) lacks for the roll-out, and send
        RemoveApplication where an app is no longer assigned; safe to run any time.
        `resend`: a bundle id whose latest version's file was replaced — sent again."""
        now, done = self.clock(), Reconciled()
        wanted_by = await self.desired(only)
        current = {(r.device_id, r.bundle_id): r
                   for r in await self.store.device_apps(device_id=only)}  # fmt: skip
        changes: list[DeviceApp] = []
        for device, apps in wanted_by.items():
            for bundle_id, version_id in apps.items():
                row = current.get((device, bundle_id))
                if row is None:
                    changes.append(wanted(device, bundle_id, version_id, now))
                elif (
                    row.desired_version_id == version_id
                    and row.state in HOLDING
                    and (bundle_id != resend or row.state == S.UPDATE_PENDING)
                ):
                    continue  # given, on its way or refused already: a new version changes that
                else:
                    changes.append(to_install(row, version_id, now))
                done.installs += 1
        removals: dict[str, list[DeviceApp]] = defaultdict(list)
        for (device, bundle_id), row in current.items():
            if bundle_id in wanted_by.get(device, {}) or row.state in (S.REMOVING, S.REMOVED):
                continue
            if device in wanted_by and _may_hold(row):
                removals[bundle_id].append(row)
            else:  # never got it, or the device left management (its apps went with it)
                changes.append(moved(row, S.REMOVED, now, desired_version_id=None,
                                     command_uuid=None, next_attempt_at=None))  # fmt: skip
        for bundle_id, rows in removals.items():
            record = self.rollout.removal_command(bundle_id)
            removing = [moved(r, S.REMOVING, now, desired_version_id=None, next_attempt_at=None,
                              command_uuid=record.command_uuid) for r in rows]  # fmt: skip
            # The command and its rows in one transaction, each row only if no other pass
            # moved it since it was read: killed between two writes, the next pass would
            # queue a second RemoveApplication (or find rows naming one never queued).
            seen = {r.device_id: r.command_uuid for r in rows}
            saved = await self.store.queue_app_command(record, removing, now, seen=seen)
            done.removals += len(saved)
        if done.removals:
            self.rollout.queued()
        await self.store.save_device_apps(changes)
        if done.installs:
            self.wake()
        return done

    async def _reinstall(self, device_id: str) -> None:
        await self.reconcile(only=device_id)

    # -- the roll-out and the MDM hooks

    async def roll_out(self, now: datetime | None = None) -> int:
        """One paced pass (see orchardist.apps.rollout); installs sent."""
        return await self.rollout.run_pass(now)

    async def on_enrolled(self, device_id: str) -> None:
        """A device sent TokenUpdate: mark what is assigned to it; ask what it holds if we
        think it has our apps (a re-enrolled device may have been erased)."""
        if not await self.store.apps_concern(device_id):
            return  # nothing assigned, nothing held: reconciling would read and change nothing
        await self.reconcile(only=device_id)
        rows = await self.store.device_apps(device_id=device_id, state=S.MANAGED)
        if rows:
            await self.rollout.ask_how_it_goes([device_id], self.clock())

    async def run(
        self,
        leased: Callable[[Callable[[], Awaitable[None]]], Awaitable[bool]],
        *,
        tick_seconds: float = TICK_SECONDS,
        reconcile_seconds: float = RECONCILE_SECONDS,
    ) -> None:
        """`serve`'s loop, until cancelled: every tick (or when woken) a step through
        `leased`, which runs it only in the one process holding the roll-out's lease (and
        keeps it there: the pace is that process's), of all those on the database: a
        roll-out pass, and a reconciliation every `reconcile_seconds` (a group's new
        members get its apps)."""
        loop = asyncio.get_running_loop()
        last_reconcile = -reconcile_seconds

        async def step() -> None:
            nonlocal last_reconcile
            if loop.time() - last_reconcile >= reconcile_seconds:
                last_reconcile = loop.time()
                await self.reconcile()
            sent = await self.roll_out()
            if sent:
                log.info("app_rollout", sent=sent)

        await poll_forever(lambda: leased(step), self._wake, tick_seconds, _log_failure)


def version_warnings(app: StoredApp | None, version: AppVersion, now: datetime) -> list[str]:
    """What an admin should know about a stored version today (expiry moves on)."""
    found = []
    if version.provisioning_uuid is None:
        found.append("no embedded provisioning profile: devices will not install the app")
    expires = version.provisioning_expires_at
    if expires is not None and expires <= now:
        found.append(f"the provisioning profile {describe_expiry(expires, now)}: the app no "
                     "longer launches. Upload a build signed with a renewed profile")  # fmt: skip
    elif expires is not None and days_left(expires, now) < EXPIRY_WARNING_DAYS[0]:
        found.append(f"the provisioning profile {describe_expiry(expires, now)}: upload a "
                     "renewed profile before then (orchardist provisioning upload)")  # fmt: skip
    if version.info.get("provisions_all_devices") is False:
        listed = version.info.get("provisioned_devices", 0)
        found.append(f"the provisioning profile lists {listed} devices: only those can run it")
    if version.icon_sha256 is None and (app is None or app.icon_sha256 is None):
        found.append("no icon could be read from the .ipa: an admin may upload one")
    return found


def _may_hold(row: DeviceApp) -> bool:
    """Whether the device may hold a managed copy (so RemoveApplication is needed)."""
    return (
        row.state in MAY_HOLD
        or row.installed_version_id is not None
        or (row.command_uuid is not None)
    )


def _mismatch(bundle: AppBundle, expected: str | None) -> list[str]:
    if expected is None or bundle.bundle_id == expected:
        return []
    return [f"this .ipa is {bundle.bundle_id}, not a version of {expected}: upload it as an "
            "app of its own, or pick the right file"]  # fmt: skip


def _unstorable(bundle: AppBundle) -> list[str]:
    problems = []
    for key, value in (("CFBundleShortVersionString", bundle.short_version),
                       ("CFBundleVersion", bundle.build)):  # fmt: skip
        if len(value) > _MAX_VERSION_CHARS or _CONTROL.search(value) or storable(value) != value:
            problems.append(f"Info.plist's {key} is not a version (at most "
                            f"{_MAX_VERSION_CHARS} printable characters)")  # fmt: skip
    if len(bundle.device_family) > _MAX_FAMILIES:
        problems.append("Info.plist's UIDeviceFamily lists more device families than exist")
    profile = bundle.provisioning
    if profile is not None and len(profile.uuid) > _MAX_VERSION_CHARS:
        problems.append("the embedded provisioning profile's UUID is not a UUID")
    return problems


def _new_version(bundle: AppBundle, stored: StoredFile, icon: str | None) -> NewAppVersion:
    profile = bundle.provisioning
    return NewAppVersion(
        bundle_id=bundle.bundle_id,
        short_version=bundle.short_version,
        build=bundle.build,
        display_name=_text(bundle.display_name),
        minimum_os=_text(bundle.minimum_os) if bundle.minimum_os else None,
        device_family=bundle.device_family,
        sha256=stored.sha256,
        size=stored.size,
        icon_sha256=icon,
        provisioning_uuid=profile.uuid if profile else None,
        provisioning_expires_at=profile.expires_at if profile else None,
        info=_details(bundle),
    )


def _details(bundle: AppBundle) -> dict[str, Any]:
    """What else is worth showing about a version, bounded (the store refuses over 16 KiB)."""
    info = bundle.info
    details: dict[str, Any] = {
        "executable": info.get("CFBundleExecutable"),
        "sdk": info.get("DTSDKName"),
        "icon_source": bundle.icon_source,
    }
    profile = bundle.provisioning
    if profile is not None:
        details.update(profile_name=profile.name, team_id=profile.team_id,
                       team_name=profile.team_name, app_id=profile.app_id,
                       provisions_all_devices=profile.provisions_all_devices,
                       provisioned_devices=len(profile.devices))  # fmt: skip
    return {
        key: _text(value) if isinstance(value, str) else value
        for key, value in details.items()
        if isinstance(value, str | bool | int)
    }


def _text(value: str) -> str:
    return _CONTROL.sub("", storable(value))[:255]


def _log_failure(error: str) -> None:
    log.error("app_rollout_failed", error=error, hint="the next pass tries again")
