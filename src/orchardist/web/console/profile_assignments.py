"""/console/profiles/{identifier}/assign and /unassign (operators: profiles.assign): the
profile page's assignment editor — devices by UDID or serial number, existing groups, all
devices — through the library as /api/v1/profiles/{identifier}/assignments, recorded
with the API's action names and targets (profile.assign, profile.unassign: the profile,
the devices, `group:NAME`s and `all`). Refusals (an unknown device or group) are recorded
as failed and change nothing."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Request, Response

from orchardist.accounts.permissions import Actor, Permission
from orchardist.audit import Actor as AuditActor
from orchardist.audit import Outcome
from orchardist.storage.listing import DeviceFilters, DeviceSort
from orchardist.storage.profiles import TargetKind
from orchardist.web.api.profiles import library_of, reconciled
from orchardist.web.console.forms import form_of
from orchardist.web.console.profiles import back_to_profile
from orchardist.web.console.session import (
    ConsoleRefusalError,
    page_router,
    require,
    services_of,
)
from orchardist.wiring import Services

router = page_router()
Assigner = Annotated[Actor, require(Permission.PROFILE_ASSIGN)]
MAX_DEVICES = 1000  # named in one assignment


@router.post("/profiles/{identifier}/assign")
async def assign(request: Request, identifier: str, actor: Assigner) -> Response:
    """Assign to devices (UDIDs or serial numbers), existing groups and/or every device."""
    services = services_of(request)
    form = await form_of(request)
    named = [n for n in re.split(r"[\s,]+", str(form.get("devices") or "")) if n][:MAX_DEVICES]
    chosen = [g for g in form.getlist("groups") if isinstance(g, str)]
    everyone = form.get("all") == "on"
    if not (named or chosen or everyone):
        raise ConsoleRefusalError(
            422, "Not assigned", "Name devices, choose groups or all devices: nothing was changed."
        )
    try:
        devices = await _devices(services, named)
        groups = await _groups(services, chosen)
    except LookupError as exc:
        asked = [identifier, *named, *(f"group:{g}" for g in chosen)]
        raise await _refused(services, actor, "profile.assign", asked, exc) from exc
    return await _assign(request, identifier, actor, devices, groups, everyone, assigned=True)


@router.post("/profiles/{identifier}/unassign")
async def unassign(request: Request, identifier: str, actor: Assigner) -> Response:
    """Take one assignment away (a device, a group, or all devices)."""
    form = await form_of(request)
    kind, target = str(form.get("kind") or ""), str(form.get("target") or "")
    if kind not in set(TargetKind) or (kind != TargetKind.ALL and not target):
        raise ConsoleRefusalError(422, "Not unassigned", "Choose an assignment to remove.")
    devices = [target] if kind == TargetKind.DEVICE else []
    groups = [target] if kind == TargetKind.GROUP else []
    everyone = kind == TargetKind.ALL
    return await _assign(request, identifier, actor, devices, groups, everyone, assigned=False)


async def _assign(
    request: Request,
    identifier: str,
    actor: Actor,
    devices: list[str],
    groups: list[str],
    everyone: bool,
    *,
    assigned: bool,
) -> Response:
    """Through the library as /api/v1/profiles/{identifier}/assignments, recorded with the
    same targets: the profile, the devices, `group:NAME`s and `all`."""
    services = services_of(request)
    action = "profile.assign" if assigned else "profile.unassign"
    targets = [
        identifier,
        *devices,
        *(f"group:{g}" for g in groups),
        *(["all"] if everyone else []),
    ]
    try:
        done = await library_of(services).assign(
            identifier, devices=devices, groups=groups, everyone=everyone, assigned=assigned
        )
    except LookupError as exc:
        raise await _refused(services, actor, action, targets, exc) from exc
    result = reconciled(done, services)
    await services.audit.record(AuditActor.account(actor.name), action, targets)
    if assigned:
        return back_to_profile(identifier, "assigned", installs=result.installs)
    return back_to_profile(identifier, "unassigned", removals=result.removals)


async def _devices(services: Services, named: list[str]) -> list[str]:
    """UDIDs for what was typed: a UDID as it is, a serial number as its device's UDID;
    LookupError for one that is neither."""
    known = set(await services.storage.device_ids(named)) if named else set()
    found: list[str] = []
    for name in named:
        if name in known:
            found.append(name)
            continue
        # by serial: the exact one comes before the longer serials the search also finds
        search = DeviceFilters(search=name)
        page = await services.storage.list_devices(search, sort=DeviceSort.SERIAL, limit=100)
        serial = [
            d.enrollment.device_id for d in page.devices if d.enrollment.facts.serial_number == name
        ]
        if len(serial) != 1:
            raise LookupError(f"no single device has the UDID or serial number {name!r}")
        found.append(serial[0])
    return list(dict.fromkeys(found))


async def _groups(services: Services, chosen: list[str]) -> list[str]:
    """The groups chosen, each one that exists (the page offers only those)."""
    unknown = sorted(set(chosen) - set(await services.storage.groups()))
    if unknown:
        raise LookupError(f"there is no group {unknown[0]!r}")
    return list(dict.fromkeys(chosen))


async def _refused(
    services: Services, actor: Actor, action: str, targets: list[str], exc: LookupError
) -> ConsoleRefusalError:
    """Recorded as failed (as the API records its 404 and 422), and the page that says so."""
    reason = str(exc)
    await services.audit.record(
        AuditActor.account(actor.name), action, targets, Outcome.FAILED, reason=reason
    )
    status = 404 if reason.startswith("no profile") else 422
    return ConsoleRefusalError(
        status, "Nothing changed", f"{reason[:1].upper()}{reason[1:]}: nothing was changed."
    )
