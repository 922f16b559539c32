"""/api/v1/provisioning-profiles: the provisioning library over HTTP (upload, list, show with
each device's state, assign, unassign, remove).

A provisioning profile holds no secret (it is handed to every device it is installed on),
but its bytes are not listed either: the API shows what an admin acts on — name, UUID, app
id, team, expiry with the warning due, what renewed it, how many devices hold it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from orchardist.accounts.permissions import Actor, Permission
from orchardist.apps.provisioning import days_left
from orchardist.apps.provisioning_expiry import expiry_warning
from orchardist.apps.provisioning_library import (
    ProvisioningConflictError,
    ProvisioningLibrary,
    ProvisioningRejectedError,
    Queued,
)
from orchardist.storage.profiles import TargetKind
from orchardist.storage.provisioning import (
    PROVISIONING_MAX_BYTES,
    ProvisioningStore,
    StoredProvisioningProfile,
)
from orchardist.web.api.audited import AuditedRoute, audited, field_of, note, strings
from orchardist.web.api.auth import Reader, requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.profiles import Targets
from orchardist.web.api.refusals import refusals
from orchardist.web.bodies import read_limited_body
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["Provisioning profiles"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
ServicesDep = Annotated[Services, Depends(services_of)]
Editor = Annotated[Actor, requires(Permission.APPS_EDIT)]
Assigner = Annotated[Actor, requires(Permission.APPS_ASSIGN)]
NONE = (404, "No provisioning profile with this UUID")
CONFLICT = (409, "The profile was renewed (assign its successor) or has expired")
# The upload's body is the .mobileprovision itself (DER CMS): FastAPI cannot see it, so the
# OpenAPI document is told.
PROVISIONING_BODY = {
    "required": True,
    "description": "A .mobileprovision as Apple's developer site gives it",
    "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("application/x-apple-aspen-mobileprovision", "application/octet-stream")
    },
}


class ProvisioningSummary(BaseModel):
    uuid: str
    name: str
    app_id: str = Field(description='"TEAMID.com.example.app", or a wildcard "TEAMID.*"')
    team_id: str
    expires_at: datetime
    days_left: int = Field(description="whole days until expiry; negative once expired")
    warning: str | None = Field(
        description="30, 14 or 7 days before expiry, and once expired, what to do; null "
        "otherwise and once renewed"
    )
    replaced_by: str | None = Field(description="the UUID of the profile that renewed it")
    provisions_all_devices: bool = Field(description="an in-house profile; else a device list")
    device_count: int = Field(description="the devices it lists (0 for in-house profiles)")
    holders: int = Field(description="devices holding it: installed by us, or listed by them")


class DeviceState(BaseModel):
    udid: str
    state: str = Field(description="pending, installed, failed, missing, removing, removed")
    error: str | None = Field(description="the device's error chain, when it failed")
    updated_at: datetime


class ProvisioningDetail(ProvisioningSummary):
    replaces: list[str] = Field(description="the UUIDs this profile renewed")
    assignments: dict[str, list[str]] = Field(description="device / group / all")
    devices: list[DeviceState]


class ProvisioningStored(BaseModel):
    uuid: str
    name: str
    app_id: str
    expires_at: datetime
    unchanged: bool = Field(description="this UUID was stored already: nothing changed")
    warnings: list[str]
    replaces: list[str] = Field(description="the profiles it renews (their holders get it)")
    installs: int = Field(description="InstallProvisioningProfile commands queued")
    asked: int = Field(
        description="other devices asked for their ProvisioningProfileList: those an app "
        "brought a renewed profile to get this one too"
    )


class QueuedResult(BaseModel):
    installs: int = Field(description="InstallProvisioningProfile commands queued")
    removals: int = Field(description="RemoveProvisioningProfile commands queued")


def _targets(path: Mapping[str, str], body: Any) -> tuple[list[str], dict[str, Any]]:
    """The profile, then the devices, `group:NAME`s and `all` it is (un)assigned."""
    groups = [f"group:{name}" for name in strings(field_of(body, "groups"))]
    everyone = ["all"] if field_of(body, "all") is True else []
    return [path["uuid"], *strings(field_of(body, "devices")), *groups, *everyone], {}


@router.get(
    "/provisioning-profiles", response_model=list[ProvisioningSummary], responses=refusals()
)
async def list_provisioning(services: ServicesDep, _: Reader) -> list[ProvisioningSummary]:
    """Every provisioning profile, by app id then latest expiry, with the expiry warning
    due (30, 14, 7 days before; expired) and how many devices hold it."""
    store, now = services.storage, datetime.now(UTC)
    return [await summary(store, p, now) for p in await store.list_provisioning_profiles()]


@router.post(
    "/provisioning-profiles",
    status_code=201,
    responses={
        201: {"model": ProvisioningStored, "description": "Stored"},
        200: {"model": ProvisioningStored, "description": "This UUID was stored already"},
        **refusals(
            (413, f"Larger than {PROVISIONING_MAX_BYTES} bytes"),
            (422, "Malformed, forged or expired: {problems: [...]} says why"),
            write=True,
        ),
    },
    openapi_extra={"requestBody": PROVISIONING_BODY},
)
@audited("provisioning.upload")
async def upload_provisioning(
    request: Request, response: Response, services: ServicesDep, _: Editor
) -> ProvisioningStored:
    """A .mobileprovision as the body: verified and stored. A profile for an app id whose
    stored profiles expire earlier renews them: every device holding one gets the new
    profile, and the old one is removed there once the new one is confirmed. Refused with
    422 (nothing stored): malformed, tampered or forged (the signature does not verify),
    or already expired — no app launches under an expired profile."""
    body = await read_limited_body(request, PROVISIONING_MAX_BYTES)
    try:
        uploaded = await library_of(services).upload(body)
    except ProvisioningRejectedError as exc:
        raise HTTPException(422, {"problems": exc.problems}) from exc
    if uploaded.unchanged:
        response.status_code = 200
    woken(Queued(installs=uploaded.installs + uploaded.asked), services)
    stored = uploaded.profile
    note(request).targets.append(stored.uuid)
    detail = {"unchanged": uploaded.unchanged, "replaces": uploaded.replaces}
    note(request).detail.update(name=stored.name, app_id=stored.app_id, **detail)
    return ProvisioningStored(
        uuid=stored.uuid,
        name=stored.name,
        app_id=stored.app_id,
        expires_at=stored.expires_at,
        unchanged=uploaded.unchanged,
        warnings=list(uploaded.warnings),
        replaces=uploaded.replaces,
        installs=uploaded.installs,
        asked=uploaded.asked,
    )


@router.get(
    "/provisioning-profiles/{uuid}", response_model=ProvisioningDetail, responses=refusals(NONE)
)
async def show_provisioning(uuid: str, services: ServicesDep, _: Reader) -> ProvisioningDetail:
    """One profile: its expiry and warning, what it renewed, its assignments and each
    device's state (pending, installed, failed with the device's reasons, missing,
    removing, removed)."""
    detail = await provisioning_detail(services.storage, uuid, datetime.now(UTC))
    if detail is None:
        raise HTTPException(404, f"no provisioning profile {uuid}")
    return detail


@router.post(
    "/provisioning-profiles/{uuid}/assignments",
    response_model=QueuedResult,
    responses=refusals(NONE, CONFLICT, write=True),
)
@audited("provisioning.assign", _targets)
async def assign_provisioning(
    uuid: str, body: Targets, services: ServicesDep, _: Assigner
) -> QueuedResult:
    """Assign the profile to devices, static groups and/or every device; it is installed
    where it is missing. 422 names an unknown device; 409 for a renewed or expired one."""
    return await _assign(uuid, body, services, assigned=True)


@router.delete(
    "/provisioning-profiles/{uuid}/assignments",
    response_model=QueuedResult,
    responses=refusals(NONE, write=True),
)
@audited("provisioning.unassign", _targets)
async def unassign_provisioning(
    uuid: str, body: Targets, services: ServicesDep, _: Assigner
) -> QueuedResult:
    """Take assignments away; devices we installed it on and that are no longer assigned
    it get RemoveProvisioningProfile."""
    return await _assign(uuid, body, services, assigned=False)


@router.delete(
    "/provisioning-profiles/{uuid}",
    response_model=QueuedResult,
    responses=refusals(NONE, write=True),
)
@audited("provisioning.remove")
async def remove_provisioning(uuid: str, services: ServicesDep, _: Editor) -> QueuedResult:
    """Forget the profile; devices we installed it on get RemoveProvisioningProfile
    (devices whose apps brought it keep it: taking it would stop those apps)."""
    try:
        done = await library_of(services).remove(uuid)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return woken(done, services)


async def _assign(uuid: str, body: Targets, services: Services, *, assigned: bool) -> QueuedResult:
    try:
        done = await library_of(services).assign(
            uuid, devices=body.devices, groups=body.groups, everyone=body.all, assigned=assigned
        )
    except ProvisioningConflictError as exc:
        raise HTTPException(409, str(exc)) from exc
    except LookupError as exc:
        status = 404 if str(exc).startswith("no provisioning profile") else 422
        raise HTTPException(status, str(exc)) from exc
    return woken(done, services)


async def summary(
    store: ProvisioningStore, profile: StoredProvisioningProfile, now: datetime
) -> ProvisioningSummary:
    """A profile as the API lists it (the console can show the same)."""
    warning = expiry_warning(profile, now)
    return ProvisioningSummary(
        uuid=profile.uuid,
        name=profile.name,
        app_id=profile.app_id,
        team_id=profile.team_id,
        expires_at=profile.expires_at,
        days_left=days_left(profile.expires_at, now),
        warning=None if warning is None else warning.text,
        replaced_by=profile.replaced_by,
        provisions_all_devices=profile.provisions_all_devices,
        device_count=profile.device_count,
        holders=len(await store.provisioning_holders(profile.uuid)),
    )


async def provisioning_detail(
    store: ProvisioningStore, uuid: str, now: datetime
) -> ProvisioningDetail | None:
    """A profile with what it renewed, its assignments and each device's state; None when
    there is no such profile."""
    profile = await store.get_provisioning_profile(uuid)
    if profile is None:
        return None
    siblings = await store.list_provisioning_profiles(app_id=profile.app_id)
    assignments: dict[str, list[str]] = {kind.value: [] for kind in TargetKind}
    for assignment in await store.provisioning_assignments(uuid):
        assignments[assignment.kind.value].append(assignment.target)
    return ProvisioningDetail(
        **(await summary(store, profile, now)).model_dump(),
        replaces=[p.uuid for p in siblings if p.replaced_by == uuid],
        assignments=assignments,
        devices=[
            DeviceState(
                udid=r.device_id, state=r.state.value, error=r.error, updated_at=r.updated_at
            )
            for r in await store.device_provisioning(uuid=uuid)
        ],
    )


def library_of(services: Services) -> ProvisioningLibrary:
    assert services.provisioning is not None
    return services.provisioning


def woken(done: Queued, services: Services) -> QueuedResult:
    """What a change queued; the pusher is woken when anything was."""
    if (done.installs or done.removals) and services.pusher is not None:
        services.pusher.wake()
    return QueuedResult(installs=done.installs, removals=done.removals)
