"""Assignment targets, shared by the libraries that assign things to devices (configuration
profiles, provisioning profiles): the devices an admin names must exist, one call names
devices, static groups and "all" at once, and an assignment reaches its members."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from orchardist.storage import MdmStorage
from orchardist.storage.profiles import Assignment, TargetKind


class ScopeStore(Protocol):
    async def device_ids(
        self, among: Sequence[str] | None = None, *, enrolled: bool = False
    ) -> list[str]: ...

    async def groups(self) -> Mapping[str, list[str]]: ...

    async def groups_of(self, device_id: str) -> list[str]: ...


async def check_devices(store: MdmStorage, devices: Sequence[str]) -> None:
    """LookupError naming the devices (ten at most) that are unknown."""
    known = set(await store.device_ids(devices)) if devices else set()
    unknown = [d for d in devices if d not in known]
    if unknown:
        raise LookupError(f"unknown device {', '.join(unknown[:10])}")


async def scope(
    store: ScopeStore, assignments: Sequence[Assignment], only: str | None = None
) -> tuple[list[str], Mapping[str, Sequence[str]]]:
    """The enrolled devices and group memberships `wanted_versions` needs: the whole fleet's,
    or only this device's (every TokenUpdate asks for one device, and reading the fleet's
    memberships there made an enrollment cost grow with the fleet)."""
    if only is None:
        return await store.device_ids(enrolled=True), await store.groups()
    enrolled = await store.device_ids([only], enrolled=True)
    if not enrolled or not any(a.kind == TargetKind.GROUP for a in assignments):
        return enrolled, {}
    return enrolled, {name: [only] for name in await store.groups_of(only)}


def targets(
    devices: Sequence[str], groups: Sequence[str], everyone: bool
) -> tuple[tuple[TargetKind, Sequence[str]], ...]:
    """(kind, targets) for each kind of assignment: everyone is the one "all" target."""
    return (
        (TargetKind.DEVICE, devices),
        (TargetKind.GROUP, groups),
        (TargetKind.ALL, [""] if everyone else []),
    )


def members(
    assignment: Assignment, enrolled: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> Sequence[str]:
    """The devices an assignment reaches (a device target may be one not enrolled)."""
    if assignment.kind == TargetKind.ALL:
        return enrolled
    if assignment.kind == TargetKind.GROUP:
        return groups.get(assignment.target, [])
    return [assignment.target]


def wanted_versions(
    assignments: Iterable[Assignment],
    latest: Mapping[str, int],
    enrolled: Sequence[str],
    groups: Mapping[str, Sequence[str]],
) -> dict[str, dict[str, int]]:
    """enrolled device → {identifier: its latest version} for each assignment reaching it
    (`latest`: identifier → latest version; an assignment of something gone is skipped)."""
    wanted: dict[str, dict[str, int]] = {device: {} for device in enrolled}
    for assignment in assignments:
        version = latest.get(assignment.identifier)
        if version is None:
            continue
        for device in members(assignment, enrolled, groups):
            if device in wanted:
                wanted[device][assignment.identifier] = version
    return wanted
