"""The provisioning profile library: upload, assignment, reconciliation, renewal, expiry.

An in-house app launches only while a provisioning profile covering it is on the device and
unexpired. Apps bring one (their embedded.mobileprovision); this library installs others
(InstallProvisioningProfile) on the devices and groups they are assigned to, as the profile
library does for configuration profiles, and renews them before they expire.

Upload: the .mobileprovision is verified (`read_mobileprovision`: a malformed, tampered or
forged one is refused) and stored once per UUID (the same one again is "unchanged").
An already-expired profile is REFUSED, not stored with a warning: iOS launches no app
under an expired profile, so installing it could only fail. One expiring within 30 days is
stored, with a warning.

Renewal: Apple gives a renewed profile a new UUID and a later expiry. A profile uploaded
for an app id that has profiles expiring earlier renews them: each gets `replaced_by` (the
new UUID), their assignments move to the new one, and every enrolled device holding one
of them — installed by us, or listed in its last ProvisioningProfileList (an app's
embedded profile) — gets InstallProvisioningProfile of the new one (through an assignment
of its own when none covers it). The other enrolled devices are asked for their
ProvisioningProfileList, and one that lists an old profile gets the new one too. Once a
device confirms the new one (acknowledges the install, or lists it), the old ones are
removed there (RemoveProvisioningProfile), and a ProvisioningProfileList after the
removal keeps the record of what it holds current. A profile expiring no later than one
already stored is kept but renews nothing: it is marked replaced by the later one.

Reconciliation: a device's desired set is the unexpired, unreplaced profiles assigned to
it (directly, through a static group, or to all); what is missing is installed, what we
installed and is no longer assigned is removed. Profiles replaced by a renewal are left to
the renewal, which removes them only once their successor is on the device. Results move
each device's state (pending → installed / failed with the device's error chain, removing
→ removed); a ProvisioningProfileList lacking an installed profile marks it missing (the
next pass installs it again), one listing a pending profile confirms it.

`remove` forgets a profile and removes it where we installed it; devices that hold it only
because an app brought it keep it (taking it would stop the app). Profiles it had renewed
stand on their own again.
"""

from __future__ import annotations

import hashlib
import plistlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from cryptography import x509

from orchardist.apps.provisioning import (
    EXPIRY_WARNING_DAYS,
    ProvisioningError,
    ProvisioningProfile,
    describe_expiry,
    read_mobileprovision,
)
from orchardist.apps.provisioning_expiry import ExpiryWarning, expiry_warning
from orchardist.mdm.commands import new_command
from orchardist.profiles.library import error_chain
from orchardist.profiles.targets import check_devices, members, targets
from orchardist.storage import MdmStorage, NewCommand
from orchardist.storage.inventory import InventoryStore
from orchardist.storage.profiles import ProfileStore, TargetKind
from orchardist.storage.provisioning import (
    DeviceProvisioning,
    ProvisioningState,
    ProvisioningStore,
    StoredProvisioningProfile,
)

log = structlog.get_logger("orchardist.provisioning")

INSTALL = "InstallProvisioningProfile"
REMOVE = "RemoveProvisioningProfile"
LIST = "ProvisioningProfileList"
_ON_DEVICE = (ProvisioningState.PENDING, ProvisioningState.INSTALLED)
_GIVEN = (*_ON_DEVICE, ProvisioningState.FAILED)  # not sent again until something changes
_LONGEST_WARNING = timedelta(days=max(EXPIRY_WARNING_DAYS))


class ProvisioningLibraryStore(ProvisioningStore, ProfileStore, InventoryStore, MdmStorage,
                               Protocol):  # fmt: skip
    """The storage roles the library uses (groups come from the profile store)."""


class ProvisioningRejectedError(ValueError):
    """A profile we will not store; `problems` say why. Nothing was stored."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ProvisioningConflictError(ValueError):
    """An assignment that cannot work: the profile was renewed, or has expired."""


@dataclass(frozen=True)
class UploadedProvisioning:
    profile: StoredProvisioningProfile
    warnings: tuple[str, ...]
    replaces: list[str]  # the UUIDs this profile renews
    installs: int  # InstallProvisioningProfile queued (renewal and assignments)
    unchanged: bool = False  # its UUID was stored already: nothing changed
    signer: str = ""  # the CMS signer's subject, for the admin to read
    asked: int = 0  # other devices asked for their ProvisioningProfileList (renewal)


@dataclass
class Queued:
    installs: int = 0  # InstallProvisioningProfile commands queued
    removals: int = 0  # RemoveProvisioningProfile commands queued


class ProvisioningLibrary:
    def __init__(
        self,
        store: ProvisioningLibraryStore,
        *,
        clock: Callable[[], datetime],
        trusted_roots: Sequence[x509.Certificate] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.trusted_roots = trusted_roots  # None: signatures prove integrity only

    # -- upload

    async def upload(self, data: bytes) -> UploadedProvisioning:
        """Verify and store a .mobileprovision, renew the profiles it succeeds and install
        it where it is assigned. ProvisioningRejectedError (nothing stored) for a malformed,
        forged or expired one."""
        try:
            read = read_mobileprovision(data, trusted_roots=self.trusted_roots)
        except ProvisioningError as exc:
            raise ProvisioningRejectedError([str(exc)]) from exc
        now = self.clock()
        if read.expires_at <= now:
            raise ProvisioningRejectedError([
                f"the provisioning profile {read.name!r} {describe_expiry(read.expires_at, now)}"
                f" ({read.expires_at:%Y-%m-%d}): no app launches under an expired profile, so "
                "it was not stored. Download the renewed profile from Apple's developer site "
                "(Certificates, Identifiers & Profiles) and upload that"
            ])  # fmt: skip
        stored = _record(read, data, now)
        existing = await self.store.get_provisioning_profile(read.uuid)
        if existing is not None:
            return UploadedProvisioning(existing, (), [], 0, True, read.signer_subject)
        try:
            added = await self.store.add_provisioning_profile(stored)
        except ValueError as exc:  # what the schema cannot hold (an absurdly long app id)
            raise ProvisioningRejectedError([str(exc)]) from exc
        if not added:  # the same profile uploaded twice at once: the other one stored it
            again = await self.store.get_provisioning_profile(read.uuid)
            return UploadedProvisioning(again or stored, (), [], 0, True, read.signer_subject)
        stored, replaces, warnings = await self._take_place(stored, read)
        warnings.extend(_upload_warnings(stored, read, now))
        asked = await self._renew(stored, replaces, now) if replaces else 0
        done = await self.reconcile()
        return UploadedProvisioning(stored, tuple(warnings), replaces, done.installs,
                                    signer=read.signer_subject, asked=asked)  # fmt: skip

    async def remember(self, read: ProvisioningProfile) -> None:
        """An app's embedded profile (AppLibrary.on_embedded_profile): stored, unassigned,
        when its UUID is new — the app installs it, not we — so that uploading its renewal
        later finds the phones that hold it and replaces it there. One already expired or
        already stored is left as it is."""
        now = self.clock()
        if read.expires_at <= now or await self.store.get_provisioning_profile(read.uuid):
            return
        try:
            await self.store.add_provisioning_profile(_record(read, read.raw, now))
        except ValueError as exc:  # what the schema cannot hold; the app stands regardless
            log.warning("embedded_profile_not_kept", uuid=read.uuid, reason=str(exc))

    async def _take_place(
        self, new: StoredProvisioningProfile, read: ProvisioningProfile
    ) -> tuple[StoredProvisioningProfile, list[str], list[str]]:
        """Where the new profile stands among those for its app id: it renews those that
        expire before it, or is itself superseded by one that does not."""
        others = [p for p in await self.store.list_provisioning_profiles(app_id=new.app_id)
                  if p.uuid != new.uuid]  # fmt: skip
        later = [p for p in others if not _older(p, new, read)]
        if later:
            head = max(later, key=lambda p: p.expires_at)
            await self.store.mark_provisioning_replaced(new.uuid, head.replaced_by or head.uuid)
            kept = replace(new, replaced_by=head.replaced_by or head.uuid)
            return kept, [], [
                f"{head.name!r} ({head.uuid}) for the same app id expires later "
                f"({head.expires_at:%Y-%m-%d}): this profile was stored but renews nothing "
                "and is not installed by renewal"
            ]  # fmt: skip
        for old in others:
            await self.store.mark_provisioning_replaced(old.uuid, new.uuid)
            for assignment in await self.store.provisioning_assignments(old.uuid):
                for uuid, assigned in ((new.uuid, True), (old.uuid, False)):
                    await self.store.set_provisioning_assignments(
                        uuid, assignment.kind, [assignment.target], assigned=assigned
                    )
        return new, [p.uuid for p in others], []

    async def _renew(self, head: StoredProvisioningProfile, olds: list[str], now: datetime) -> int:
        """Give the renewed profile to every enrolled holder of an old one: those its
        assignments do not cover get one of their own (the next reconciliation installs
        it). Where it is on the device already, the old ones go at once. Every other
        enrolled device is asked for its ProvisioningProfileList: an app may have brought
        an old profile to a device that never listed it, and its answer gives that device
        the renewal (see `_compare_with_device`). Returns how many were asked."""
        enrolled = await self.store.device_ids(enrolled=True)
        holders: set[str] = set()
        for old in olds:
            holders.update(await self.store.provisioning_holders(old))
        holders &= set(enrolled)
        have = set(await self.store.provisioning_holders(head.uuid))
        await self._give(head.uuid, holders - have)
        for device in sorted(holders & have):
            await self._retire_olds(device, head.uuid, now)
        unknown = [device for device in enrolled if device not in holders]
        if unknown:
            await self._queue(LIST, {}, unknown, now)
        return len(unknown)

    async def _give(self, uuid: str, devices: Collection[str]) -> None:
        """Assign the profile to these devices unless their assignments cover them: a
        holder of a renewed profile keeps the renewal until it is unassigned."""
        wanted = await self.desired(next(iter(devices)) if len(devices) == 1 else None)
        uncovered = sorted(d for d in devices if uuid not in wanted.get(d, set()))
        await self.store.set_provisioning_assignments(
            uuid, TargetKind.DEVICE, uncovered, assigned=True
        )

    # -- assignment and reconciliation

    async def assign(
        self,
        uuid: str,
        *,
        devices: Sequence[str] = (),
        groups: Sequence[str] = (),
        everyone: bool = False,
        assigned: bool = True,
    ) -> Queued:
        """Add (or take away) assignments, then reconcile. LookupError for an unknown
        profile or device; ProvisioningConflictError when assigning a renewed or expired
        profile (nothing changes then)."""
        profile = await self.store.get_provisioning_profile(uuid)
        if profile is None:
            raise LookupError(f"no provisioning profile {uuid}")
        if assigned and profile.replaced_by is not None:
            raise ProvisioningConflictError(
                f"{uuid} was renewed by {profile.replaced_by}: assign that one"
            )
        if assigned and profile.expires_at <= self.clock():
            raise ProvisioningConflictError(
                f"{uuid} {describe_expiry(profile.expires_at, self.clock())}: upload the "
                "renewed profile and assign that"
            )
        await check_devices(self.store, devices)
        for kind, named in targets(devices, groups, everyone):
            await self.store.set_provisioning_assignments(uuid, kind, named, assigned=assigned)
        return await self.reconcile()

    async def desired(self, only: str | None = None) -> dict[str, set[str]]:
        """enrolled device (or only this one) → the UUIDs it should hold: assigned,
        unexpired, not renewed. For one device, only its own groups are read: enrollment
        asks for it, and must not read a whole fleet."""
        assignments = await self.store.provisioning_assignments()
        if only is None:
            enrolled = await self.store.device_ids(enrolled=True)
            groups = await self.store.groups() if assignments else {}
        else:
            enrolled = await self.store.device_ids([only], enrolled=True)
            member_of = await self.store.groups_of(only) if enrolled and assignments else []
            groups = {name: [only] for name in member_of}
        wanted: dict[str, set[str]] = {device: set() for device in enrolled}
        if not assignments:
            return wanted
        now = self.clock()
        live = {p.uuid for p in await self.store.list_provisioning_profiles()
                if p.replaced_by is None and p.expires_at > now}  # fmt: skip
        for assignment in assignments:
            if assignment.identifier not in live:
                continue
            for device in members(assignment, enrolled, groups):
                if device in wanted:
                    wanted[device].add(assignment.identifier)
        return wanted

    async def reconcile(self, only: str | None = None) -> Queued:
        """Install what each device (or only this one) lacks; remove what we installed and
        is no longer assigned. Safe to run any time (`serve` runs it periodically)."""
        done = Queued()
        wanted = await self.desired(only)
        current = {(r.device_id, r.uuid): r
                   for r in await self.store.device_provisioning(device_id=only)}  # fmt: skip
        profiles = await self.store.list_provisioning_profiles() if current else []
        renewed = {p.uuid for p in profiles if p.replaced_by is not None}
        installs: dict[str, list[str]] = {}
        for device, uuids in wanted.items():
            for uuid in sorted(uuids):
                row = current.get((device, uuid))
                if row is None or row.state not in _GIVEN:
                    installs.setdefault(uuid, []).append(device)
        removals: dict[str, list[str]] = {}
        for (device, uuid), row in current.items():
            if uuid in wanted.get(device, set()) or uuid in renewed or row.state not in _ON_DEVICE:
                continue  # wanted; left to the renewal; or not on the device
            removals.setdefault(uuid, []).append(device)
        now = self.clock()
        for uuid, devices in installs.items():
            done.installs += await self._install(uuid, devices, now)
        for uuid, devices in removals.items():
            done.removals += await self._remove(uuid, devices, now)
        return done

    async def remove(self, uuid: str) -> Queued:
        """Forget the profile; RemoveProvisioningProfile where we installed it. LookupError
        when there is no such profile."""
        if await self.store.get_provisioning_profile(uuid) is None:
            raise LookupError(f"no provisioning profile {uuid}")
        holding = [r.device_id for r in await self.store.device_provisioning(uuid=uuid)
                   if r.state in _ON_DEVICE]  # fmt: skip
        done = Queued(removals=await self._remove(uuid, holding, self.clock()))
        for profile in await self.store.list_provisioning_profiles():
            if profile.replaced_by == uuid:
                await self.store.mark_provisioning_replaced(profile.uuid, None)
        await self.store.delete_provisioning_profile(uuid)
        return done

    # -- commands

    async def _install(self, uuid: str, devices: Sequence[str], now: datetime) -> int:
        profile = await self.store.get_provisioning_profile(uuid)
        if profile is None or not devices:
            return 0
        record = _command(INSTALL, {"ProvisioningProfile": profile.body})
        # The command and its rows in one transaction: killed between the two, the next
        # pass (another process, once it has taken the lease over) would send it again.
        await self.store.queue_provisioning_command(record, [
            DeviceProvisioning(d, uuid, ProvisioningState.PENDING, record.command_uuid, None, now)
            for d in devices
        ], now)  # fmt: skip
        return len(devices)

    async def _remove(self, uuid: str, devices: Sequence[str], now: datetime) -> int:
        if not devices:
            return 0
        record = _command(REMOVE, {"UUID": uuid})
        await self.store.queue_provisioning_command(record, [
            DeviceProvisioning(d, uuid, ProvisioningState.REMOVING, record.command_uuid, None, now)
            for d in devices
        ], now)  # fmt: skip
        return len(devices)

    async def _queue(
        self, request_type: str, params: dict[str, Any], devices: Sequence[str], now: datetime
    ) -> str:
        record = _command(request_type, params)
        await self.store.enqueue(record, devices, now)
        return record.command_uuid

    # -- results (MdmService hooks)

    async def on_enrolled(self, device_id: str) -> None:
        """A device sent TokenUpdate: give it what is assigned to it."""
        if await self.store.provisioning_concerns(device_id):  # else nothing would change
            await self.reconcile(only=device_id)

    async def on_result(
        self,
        device_id: str,
        command_uuid: str,
        request_type: str,
        acknowledged: bool,
        result: Mapping[str, Any],
    ) -> None:
        """Install/RemoveProvisioningProfile answers move the device's state (an Error:
        failed, with the error chain); a ProvisioningProfileList confirms, finds missing
        profiles and holders of renewed ones. Other results are not ours."""
        if request_type not in (INSTALL, REMOVE, LIST):
            return
        now = self.clock()
        if request_type == LIST:
            if acknowledged:
                await self._compare_with_device(device_id, _listed(result), now)
            return
        row = await self.store.device_provisioning_by_command(device_id, command_uuid)
        if row is None:
            return  # superseded by a newer command for the same profile, or forgotten
        if not acknowledged:
            await self._save([_moved(row, ProvisioningState.FAILED, now, error_chain(result))])
        elif request_type == INSTALL:
            await self._save([_moved(row, ProvisioningState.INSTALLED, now)])
            await self._retire_olds(device_id, row.uuid, now)
        else:
            await self._save([_moved(row, ProvisioningState.REMOVED, now)])
            # What the device holds now: the inventory (and so the holders) follows it.
            await self._queue(LIST, {}, [device_id], now)

    async def _compare_with_device(self, device_id: str, listed: set[str], now: datetime) -> None:
        changes = []
        for row in await self.store.device_provisioning(device_id=device_id):
            if row.state == ProvisioningState.INSTALLED and row.uuid not in listed:
                changes.append(_moved(row, ProvisioningState.MISSING, now))
            elif row.uuid in listed and row.state in (
                ProvisioningState.PENDING, ProvisioningState.MISSING, ProvisioningState.FAILED
            ):  # fmt: skip
                changes.append(_moved(row, ProvisioningState.INSTALLED, now))
        await self._save(changes)
        profiles = {p.uuid: p for p in await self.store.list_provisioning_profiles()}
        renewals = set()
        for uuid in sorted(listed & profiles.keys()):
            head = profiles[uuid].replaced_by
            if head is None:
                await self._retire_olds(device_id, uuid, now, listed=listed)
            elif head in profiles and head not in listed:
                renewals.add(head)  # a holder of a renewed profile: it gets the renewal
        for head in sorted(renewals):
            await self._give(head, [device_id])
        if renewals:
            await self.reconcile(only=device_id)

    async def _retire_olds(
        self, device_id: str, head: str, now: datetime, *, listed: set[str] | None = None
    ) -> None:
        """`head` is confirmed on the device: remove the profiles it renewed from there."""
        olds = [p.uuid for p in await self.store.list_provisioning_profiles()
                if p.replaced_by == head]  # fmt: skip
        if not olds:
            return
        if listed is None:
            inventory = await self.store.get_inventory(device_id)
            listed = {p.uuid for p in inventory.provisioning_profiles} if inventory else set()
        rows = {r.uuid: r for r in await self.store.device_provisioning(device_id=device_id)}
        for old in olds:
            row = rows.get(old)
            if row is not None and row.state in (
                ProvisioningState.REMOVING, ProvisioningState.REMOVED
            ):  # fmt: skip
                continue  # asked already (a device still listing it is not asked forever)
            if old in listed or (row is not None and row.state in _ON_DEVICE):
                await self._remove(old, [device_id], now)

    async def _save(self, rows: Sequence[DeviceProvisioning]) -> None:
        await self.store.save_device_provisioning(rows)

    # -- expiry

    async def expiry_warnings(self, now: datetime | None = None) -> list[ExpiryWarning]:
        """The 30-, 14- and 7-day (and expired) warnings due that were not given before:
        each is logged here, once — the profile's record says which it had last, and of
        several servers the one that moves that record logs it."""
        now = now or self.clock()
        due = []
        for profile in await self.store.provisioning_profiles_expiring(now + _LONGEST_WARNING):
            warning = expiry_warning(profile, now)
            if warning is None or (
                profile.expiry_warned_days is not None
                and profile.expiry_warned_days <= warning.threshold
            ):
                continue
            if await self.store.claim_provisioning_expiry_warning(profile.uuid, warning.threshold):
                due.append(warning)
                event = "provisioning_profile_expired" if warning.threshold == 0 else (
                    "provisioning_profile_expiring")  # fmt: skip
                log.warning(event, uuid=profile.uuid, app_id=profile.app_id,
                            expires_at=profile.expires_at.isoformat(),
                            days=warning.threshold, message=warning.text)  # fmt: skip
        return due

    async def serve_pass(self, wake: Callable[[], None] | None = None) -> None:
        """`serve`'s periodic pass (under a lease, web/background.py): expiry warnings,
        then reconciliation (static groups change without telling this library); `wake`
        the pusher when anything was queued."""
        warned = await self.expiry_warnings()
        done = await self.reconcile()
        if (done.installs or done.removals) and wake is not None:
            wake()
        log.info("provisioning_pass", installs=done.installs, removals=done.removals,
                 warnings=len(warned))  # fmt: skip


def _command(request_type: str, params: dict[str, Any]) -> NewCommand:
    command = new_command(request_type, params)
    return NewCommand(command.command_uuid, request_type, plistlib.dumps(command.as_plist()))


def _record(read: ProvisioningProfile, data: bytes, now: datetime) -> StoredProvisioningProfile:
    return StoredProvisioningProfile(
        uuid=read.uuid,
        name=read.name or read.app_id_name or read.uuid,
        team_id=read.team_id,
        app_id=read.app_id,
        expires_at=read.expires_at,
        provisions_all_devices=read.provisions_all_devices,
        device_count=len(read.devices),
        sha256=hashlib.sha256(data).hexdigest(),
        body=bytes(data),
        created_at=now,
    )


def _upload_warnings(
    stored: StoredProvisioningProfile, read: ProvisioningProfile, now: datetime
) -> list[str]:
    warnings = []
    soon = expiry_warning(stored, now)
    if soon is not None:
        warnings.append(soon.text)
    if not read.provisions_all_devices:
        warnings.append(
            f"the profile lists {len(read.devices)} devices: only those can run apps signed "
            "with it (an in-house profile provisions all devices)"
        )
    return warnings


def _older(
    stored: StoredProvisioningProfile, new: StoredProvisioningProfile, read: ProvisioningProfile
) -> bool:
    """Whether a stored profile is older than the new one: it expires earlier; on the same
    expiry, Apple issued it earlier (its own CreationDate)."""
    if stored.expires_at != new.expires_at:
        return stored.expires_at < new.expires_at
    try:
        return read_mobileprovision(stored.body).created_at < read.created_at
    except ProvisioningError:  # stored verified; should it not read now, keep the stored
        return False


def _listed(result: Mapping[str, Any]) -> set[str]:
    """The UUIDs in a ProvisioningProfileList answer (a device's answer: anything goes)."""
    items = result.get(LIST)
    if not isinstance(items, list):
        return set()
    return {item["UUID"] for item in items
            if isinstance(item, dict) and isinstance(item.get("UUID"), str)}  # fmt: skip


def _moved(
    row: DeviceProvisioning, state: ProvisioningState, now: datetime, error: str | None = None
) -> DeviceProvisioning:
    return replace(row, state=state, error=error, updated_at=now)
