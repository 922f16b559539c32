"""The profile library: versions, assignments and reconciliation.

A device's desired state is the set of profiles assigned to it (directly, through a static
group, or to all). `reconcile` compares that with what each device was last given and
queues the difference: InstallProfile (signed, its payloads encrypted to that device's
identity certificate) for what is missing or outdated, RemoveProfile for what is no longer
assigned. Queueing makes the push jobs, so devices are woken at once. Results move each
device's state along (pending → installed / failed, removing → removed); a ProfileList
that lacks an installed profile marks it missing, and the next pass installs it again.
"""

from __future__ import annotations

import plistlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.mdm.commands import new_command
from orchardist.profiles import envelope
from orchardist.profiles.delivery import Delivery
from orchardist.profiles.states import OVERDUE_AFTER as OVERDUE_AFTER
from orchardist.profiles.states import error_chain as error_chain
from orchardist.profiles.states import install_command, scheduled, settled
from orchardist.profiles.states import moved as _moved
from orchardist.profiles.states import overdue as overdue
from orchardist.profiles.states import plist as _plist
from orchardist.profiles.targets import check_devices, scope, targets, wanted_versions
from orchardist.profiles.validate import check_profile
from orchardist.schema.validate import Problem
from orchardist.storage import CertificateStore, MdmStorage, NewCommand
from orchardist.storage.profile_work import ProfileWorkStore, WantedInstall, WorkPage, WorkScope
from orchardist.storage.profiles import (
    DeviceProfile,
    ProfileState,
    ProfileStore,
    ProfileVersion,
)

PAGE_SIZE = 1000  # devices a reconciliation pass reads at a time
DELIVERY_PER_MINUTE = 6000  # [profiles] delivery_per_minute


class LibraryStore(ProfileStore, ProfileWorkStore, MdmStorage, CertificateStore, Protocol):
    """The storage roles the library uses."""


class ProfileRejectedError(ValueError):
    """A profile we will not store; `problems` say why, each with its key path."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__("; ".join(self.problems[:10]))


@dataclass
class Reconciled:
    installs: int = 0  # devices given an InstallProfile: queued now, or scheduled
    removals: int = 0
    scheduled: int = 0  # of the installs, those left to the paced delivery pass
    skipped: list[str] = field(default_factory=list)  # devices without a usable identity


@dataclass(frozen=True)
class Added:
    version: ProfileVersion  # with unchanged, the latest version, identical to what was given
    unchanged: bool


class ProfileLibrary:
    def __init__(
        self,
        store: LibraryStore,
        signer: tuple[x509.Certificate, rsa.RSAPrivateKey, Sequence[x509.Certificate]],
        *,
        clock: Callable[[], datetime],
        delivery_per_minute: int = DELIVERY_PER_MINUTE,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.store = store
        self.signer = signer
        self.clock = clock
        self.page_size = page_size
        # What one change signs at once, in the request: a tenth of a minute's pace.
        self.inline_limit = max(1, delivery_per_minute // 10)
        self.delivery = Delivery(
            store, per_minute=delivery_per_minute, version=store.profile_version,
            payload=self.payload_for, install=install_command, clock=clock, changed=self._changed,
        )  # fmt: skip
        # told of every profile state change on a device (webhooks)
        self.on_change: Callable[[Sequence[DeviceProfile]], Awaitable[None]] | None = None

    async def _save(self, rows: Sequence[DeviceProfile]) -> None:
        await self.store.save_device_profiles(rows)
        await self._changed(rows)

    async def _changed(self, rows: Sequence[DeviceProfile]) -> None:
        if rows and self.on_change is not None:
            await self.on_change(rows)

    # -- versions

    async def add(self, profile: dict[str, Any], *, strict: bool = True) -> Added:
        """Store a profile as the next version of its identifier; nothing stored when it
        does not pass Apple's schema (unknown keys are errors unless strict=False), nor when
        it is the latest version again (then no device gets it again either)."""
        report = check_profile(profile, unknown_keys_are_errors=strict)
        if report.errors:
            raise ProfileRejectedError(report.errors)
        if "EncryptedPayloadContent" in profile:
            raise ProfileRejectedError(["an encrypted profile cannot be stored: upload it clear"])
        try:
            body = envelope.serialize(profile)
        except ValueError as exc:  # a control character where the schema does not look:
            # a binary plist carries it, the XML the profile is stored and sent as cannot
            raise ProfileRejectedError([f"the profile cannot be written as XML: {exc}"]) from exc
        identifier = str(profile["PayloadIdentifier"])
        if await self.store.get_profile(identifier) is not None:
            latest = await self.store.profile_version(identifier)
            if latest is not None and _content(plistlib.loads(latest.body)) == _content(profile):
                return Added(latest, unchanged=True)
        payloads = profile.get("PayloadContent", [])
        stored = await self.store.add_profile_version(
            identifier,
            str(profile.get("PayloadDisplayName") or identifier),
            [str(p.get("PayloadType")) for p in payloads],
            body,
            self.clock(),
        )
        return Added(stored, unchanged=False)

    async def upload(self, data: bytes) -> Added:
        """A .mobileconfig from elsewhere (signed or not; a bad signature is refused)."""
        try:
            read = envelope.read(data)
        except envelope.ProfileReadError as exc:
            raise ProfileRejectedError([str(exc)]) from exc
        return await self.add(read.profile, strict=False)

    # -- assignment

    async def assign(
        self,
        identifier: str,
        *,
        devices: Sequence[str] = (),
        groups: Sequence[str] = (),
        everyone: bool = False,
        assigned: bool = True,
    ) -> Reconciled:
        if await self.store.get_profile(identifier) is None:
            raise LookupError(f"no profile {identifier}")
        await check_devices(self.store, devices)
        for kind, named in targets(devices, groups, everyone):
            await self.store.set_assignments(identifier, kind, named, assigned=assigned)
        return await self.reconcile(identifier=identifier)

    async def set_group(self, name: str, devices: Sequence[str]) -> Reconciled:
        """Create or replace a static group (with no devices it is gone); the profiles
        assigned to it follow its members. LookupError names unknown devices: then
        nothing changes. The API, the CLI and the console all set groups through here."""
        await check_devices(self.store, devices)
        await self.store.set_group(name, devices)
        return await self.reconcile(group=name)

    async def delete(self, identifier: str) -> Reconciled:
        if not await self.store.delete_profile(identifier):
            raise LookupError(f"no profile {identifier}")
        return await self.reconcile(identifier=identifier)

    # -- reconciliation

    async def desired(self, only: str | None = None) -> dict[str, dict[str, int]]:
        """enrolled device (or only this one) → {identifier: latest version} from the
        assignments (the whole fleet in memory: for tools and tests, not the passes)."""
        assignments = await self.store.assignments()
        enrolled, groups = await scope(self.store, assignments, only)
        if not assignments:
            return {device: {} for device in enrolled}
        latest = {p.identifier: p.latest_version for p in await self.store.list_profiles()}
        return wanted_versions(assignments, latest, enrolled, groups)

    async def reconcile(
        self, only: str | None = None, *, identifier: str | None = None, group: str | None = None
    ) -> Reconciled:
        """Queue what each device (or only this one) lacks or no longer needs; safe to run
        any time (at start and in the periodic repair over everything). `identifier` looks
        at that profile only, `group` at that group's profiles and members only: what an
        assignment, a new version or a group change can have changed.

        The pass walks the devices a page at a time; the database computes what each page
        lacks. The first `inline_limit` installs are signed and queued at once (a request
        touching a few devices answers with them queued, as before); the rest are
        scheduled for the paced delivery pass (profiles.delivery), so a new version for
        100,000 devices neither holds them in memory nor signs them in the request.
        RemoveProfile is one command per profile per page, queued at once."""
        if only is not None:
            return await self._reconcile_device(only)
        done, after = Reconciled(), None
        work = WorkScope(identifier=identifier, group=group)
        versions: dict[tuple[str, int], ProfileVersion | None] = {}
        while page := await self._page(work, after, done):
            if not page.devices:
                break
            after = page.devices[-1]
            done.installs += page.scheduled
            done.scheduled += page.scheduled
            changes = await self._install_page(page.installs, done, versions)
            changes += await self._remove(page.removals, done)
            if changes and self.on_change is not None:
                await self.on_change(changes)
        if done.scheduled:
            self.delivery.wake()
        return done

    async def _page(self, work: WorkScope, after: str | None, done: Reconciled) -> WorkPage:
        """The next page; once this pass has queued all it queues at once, with what it
        lacks scheduled by the database (none of it read here)."""
        if done.installs - done.scheduled >= self.inline_limit:
            return await self.store.schedule_work(work, after, self.page_size, self.clock())
        return await self.store.profile_work(work, after, self.page_size)

    async def _install_page(
        self,
        installs: Sequence[WantedInstall],
        done: Reconciled,
        versions: dict[tuple[str, int], ProfileVersion | None],
    ) -> list[DeviceProfile]:
        now, changes, later = self.clock(), [], []
        for want in installs:
            if done.installs - done.scheduled >= self.inline_limit:
                later.append(want)
                continue
            identity = {want.device_id: want.identity_der}  # read with the page
            saved = await self._install(want.device_id, want.identifier, want.version,
                                        want.row, now, identity, versions)  # fmt: skip
            if saved is None:
                done.skipped.append(want.device_id)
                continue
            changes.extend(saved)
            done.installs += len(saved)
        rows = [scheduled(want, now) for want in later]
        count = await self.store.schedule_installs(rows)
        done.installs += count
        done.scheduled += count
        return changes

    async def _remove(self, rows: Sequence[DeviceProfile], done: Reconciled) -> list[DeviceProfile]:
        removals: dict[str, list[DeviceProfile]] = {}
        for row in rows:
            removals.setdefault(row.identifier, []).append(row)
        now, changes = self.clock(), []
        for identifier, held in removals.items():
            command = new_command("RemoveProfile", {"Identifier": identifier})
            record = NewCommand(command.command_uuid, "RemoveProfile", _plist(command.as_plist()))
            moved = [_moved(row, ProfileState.REMOVING, now, desired=None,
                            command_uuid=command.command_uuid) for row in held]  # fmt: skip
            seen = {row.device_id: row.command_uuid for row in held}
            saved = await self.store.queue_profile_command(record, moved, seen, now)
            changes.extend(saved)
            done.removals += len(saved)
        return changes

    async def _reconcile_device(self, only: str) -> Reconciled:
        """Every TokenUpdate: what the device lacks, from one read (ProfileStore.device_plan);
        a scheduled install of its is queued now."""
        done, now = Reconciled(), self.clock()
        plan = await self.store.device_plan(only)
        wanted = dict(plan.wanted) if plan.enrolled else {}
        current = {r.identifier: r for r in plan.rows}
        changes: list[DeviceProfile] = []
        for identifier, version in wanted.items():
            row = current.get(identifier)
            if row is not None and settled(row, version):
                continue  # given (or refused) already: a new version changes that
            saved = await self._install(only, identifier, version, row, now,
                                        {only: plan.identity_der}, {})  # fmt: skip
            if saved is None:
                done.skipped.append(only)
                continue
            changes.extend(saved)
            done.installs += len(saved)
        stale = [r for i, r in current.items() if i not in wanted
                 and r.state not in (ProfileState.REMOVING, ProfileState.REMOVED)]  # fmt: skip
        changes += await self._remove(stale, done)
        if changes and self.on_change is not None:
            await self.on_change(changes)
        return done

    async def repair(self) -> Reconciled:
        """The periodic pass: reconcile (reinstalling what a ProfileList showed missing),
        then ask every device holding our profiles for its ProfileList (one command a page
        of devices), so that drift is seen by the next pass."""
        done, after = await self.reconcile(), None
        while holders := await self.store.profile_holders(after, self.page_size):
            after = holders[-1]
            command = new_command("ProfileList", {})
            record = NewCommand(command.command_uuid, "ProfileList", _plist(command.as_plist()))
            await self.store.enqueue(record, holders, self.clock())
        return done

    async def _install(
        self,
        device: str,
        identifier: str,
        version: int,
        row: DeviceProfile | None,
        now: datetime,
        identities: Mapping[str, bytes | None],
        versions: dict[tuple[str, int], ProfileVersion | None],
    ) -> list[DeviceProfile] | None:
        if device in identities:  # read with the plan
            der = identities[device]
            recipient = None if der is None else x509.load_der_x509_certificate(der)
        else:
            recipient = await self._identity_of(device)
        if (identifier, version) not in versions:
            versions[(identifier, version)] = await self.store.profile_version(identifier, version)
        stored = versions[(identifier, version)]
        if recipient is None or stored is None:
            return None
        record = install_command(self.payload_for(stored, recipient))
        change = DeviceProfile(
            device_id=device,
            identifier=identifier,
            desired_version=version,
            installed_version=row.installed_version if row else None,
            state=ProfileState.PENDING,
            command_uuid=record.command_uuid,
            error=None,
            updated_at=now,
        )
        # The command and its row in one transaction: a pass killed mid-way has queued
        # nothing the next pass would not see (it would queue a second InstallProfile).
        # Empty when another pass (another worker) queued it meanwhile.
        seen = {device: None if row is None else row.command_uuid}
        return await self.store.queue_profile_command(record, [change], seen, now)

    def payload_for(self, stored: ProfileVersion, recipient: x509.Certificate) -> bytes:
        """The bytes InstallProfile carries: payloads encrypted to the device, then signed."""
        profile = plistlib.loads(stored.body)
        cert, key, chain = self.signer
        return envelope.sign(envelope.serialize(envelope.encrypt_for(profile, recipient)),
                             cert, key, chain)  # fmt: skip

    async def _identity_of(self, device: str) -> x509.Certificate | None:
        enrollment = await self.store.get_enrollment(device)
        if enrollment is None:
            return None
        issued = await self.store.certificate_by_sha256(enrollment.identity_sha256)
        return None if issued is None else x509.load_der_x509_certificate(issued.der)

    # -- results

    async def on_enrolled(self, device_id: str) -> None:
        """A device sent TokenUpdate: give it what is assigned to it (its groups, all)."""
        await self.reconcile(only=device_id)

    async def on_result(
        self,
        device_id: str,
        command_uuid: str,
        request_type: str,
        acknowledged: bool,
        result: Mapping[str, Any],
    ) -> None:
        """A device answered a command: InstallProfile, RemoveProfile and ProfileList
        results move profile states; others are not ours."""
        if request_type not in ("InstallProfile", "RemoveProfile", "ProfileList"):
            return
        now = self.clock()
        if request_type == "ProfileList":
            if not acknowledged:
                return
            await self._compare_with_device(device_id, result, now)
            return
        row = await self.store.device_profile_by_command(device_id, command_uuid)
        if row is None:
            return  # superseded by a newer command for the same profile
        if request_type == "InstallProfile":
            if acknowledged:
                change = _moved(row, ProfileState.INSTALLED, now, installed=row.desired_version)
            else:
                change = _moved(row, ProfileState.FAILED, now, error=error_chain(result))
        elif acknowledged:
            change = _moved(row, ProfileState.REMOVED, now, installed=None)
        else:
            change = _moved(row, ProfileState.FAILED, now, error=error_chain(result))
        await self._save([change])

    async def _compare_with_device(
        self, device_id: str, result: Mapping[str, Any], now: datetime
    ) -> None:
        listed = result.get("ProfileList")
        if not isinstance(listed, list):
            return
        present = {
            p["PayloadIdentifier"]
            for p in listed  # a device's answer: identifiers of any type, unhashable included
            if isinstance(p, dict) and isinstance(p.get("PayloadIdentifier"), str)
        }
        changes = [
            _moved(row, ProfileState.MISSING, now)
            for row in await self.store.device_profiles(device_id=device_id)
            if row.state == ProfileState.INSTALLED and row.identifier not in present
        ]
        await self._save(changes)


def _content(profile: dict[str, Any]) -> dict[str, Any]:
    """What a device would see change: the profile without its PayloadUUIDs, which some
    tools make afresh on every export (our specs derive them from the identifiers)."""
    payloads = profile.get("PayloadContent")
    if isinstance(payloads, list):
        payloads = [_without_uuid(p) if isinstance(p, dict) else p for p in payloads]
    return {**_without_uuid(profile), "PayloadContent": payloads}


def _without_uuid(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "PayloadUUID"}
