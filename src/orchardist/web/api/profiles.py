"""/api/v1/profiles and /api/v1/groups: the profile library over HTTP.

Profile contents are never listed: they hold Wi-Fi passwords and keys. The API shows
identifiers, versions, payload types, assignments and per-device state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from orchardist.accounts.permissions import Actor, Permission
from orchardist.profiles.library import ProfileLibrary, ProfileRejectedError, Reconciled, overdue
from orchardist.storage.profiles import ProfileStore, StoredProfile, TargetKind
from orchardist.web.api.audited import AuditedRoute, audited, field_of, note, strings
from orchardist.web.api.auth import Reader, requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["Profiles"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
ServicesDep = Annotated[Services, Depends(services_of)]
Editor = Annotated[Actor, requires(Permission.PROFILE_EDIT)]
Assigner = Annotated[Actor, requires(Permission.PROFILE_ASSIGN)]
MAX_PROFILE_BYTES = 4 * 1024 * 1024
NONE = (404, "No profile with this identifier")
# The upload's body is read raw (a plist, perhaps CMS-signed): FastAPI cannot see it, so the
# OpenAPI document is told.
PROFILE_BODY = {
    "required": True,
    "description": "A .mobileconfig, signed or not",
    "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("application/x-apple-aspen-config", "application/octet-stream")
    },
}


class ProfileSummary(BaseModel):
    identifier: str
    display_name: str
    latest_version: int
    payload_types: list[str]
    updated_at: datetime


class ProfileDetail(ProfileSummary):
    versions: list[dict[str, object]]
    assignments: dict[str, list[str]] = Field(description="device / group / all")


# What storage keeps of a group's name: a longer one is refused, not cut (cut names collide).
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class Targets(BaseModel):
    devices: list[str] = Field(default_factory=list)
    groups: list[GroupName] = Field(default_factory=list)
    all: bool = False


class ReconcileResult(BaseModel):
    installs: int = Field(
        description="Devices given an InstallProfile: queued now, or scheduled (see scheduled)"
    )
    removals: int = Field(description="RemoveProfile commands queued")
    scheduled: int = Field(
        default=0,
        description="Of the installs, those too many to sign at once: the server queues them "
        "at [profiles] delivery_per_minute",
    )
    skipped: list[str] = Field(description="devices without a usable identity certificate")


class DeviceState(BaseModel):
    udid: str
    state: str
    desired_version: int | None
    installed_version: int | None
    error: str | None
    updated_at: datetime
    overdue: bool = Field(description="pending or removing for over a day")


class Group(BaseModel):
    devices: list[str]


class ProfileStored(BaseModel):
    identifier: str
    version: int
    installs: int = Field(description="InstallProfile commands queued")
    unchanged: bool = Field(
        default=False, description="the latest version had this content already: nothing stored"
    )


def _targets(path: Mapping[str, str], body: Any) -> tuple[list[str], dict[str, Any]]:
    """The profile, then the devices, `group:NAME`s and `all` it is (un)assigned."""
    groups = [f"group:{name}" for name in strings(field_of(body, "groups"))]
    everyone = ["all"] if field_of(body, "all") is True else []
    return [path["identifier"], *strings(field_of(body, "devices")), *groups, *everyone], {}


@router.get("/profiles", response_model=list[ProfileSummary], responses=refusals())
async def list_profiles(services: ServicesDep, _: Reader) -> list[ProfileSummary]:
    """Every profile in the library, its latest version's payload types (never contents)."""
    return await profile_summaries(services.storage)


async def profile_summaries(store: ProfileStore) -> list[ProfileSummary]:
    """The library as GET /api/v1/profiles and the console's Profiles page list it."""
    found = []
    for profile in await store.list_profiles():
        latest = await store.profile_version(profile.identifier)
        assert latest is not None
        found.append(_summary(profile, latest.payload_types))
    return found


@router.post(
    "/profiles",
    status_code=201,
    responses={
        201: {"model": ProfileStored, "description": "Stored as a new version"},
        200: {"model": ProfileStored, "description": "Same content as the latest version"},
        **refusals(
            (413, f"Larger than {MAX_PROFILE_BYTES} bytes"),
            (422, "Not a profile, or it does not pass Apple's schema: every problem listed"),
            write=True,
        ),
    },
    openapi_extra={"requestBody": PROFILE_BODY},
)
@audited("profile.upload")
async def upload_profile(
    request: Request, response: Response, services: ServicesDep, _: Editor
) -> dict[str, object]:
    """A .mobileconfig (signed or not) as the body: stored as the next version of its
    identifier, and sent to the devices it is assigned to; 422 with every problem when it
    does not pass Apple's schema. The same content as the latest version again stores
    nothing and reinstalls nothing: 200 with that version and `"unchanged": true`."""
    body = await request.body()
    if len(body) > MAX_PROFILE_BYTES:
        raise HTTPException(413, f"a profile may be at most {MAX_PROFILE_BYTES} bytes")
    library = library_of(services)
    try:
        added = await library.upload(body)
    except ProfileRejectedError as exc:
        raise HTTPException(422, {"problems": exc.problems}) from exc
    if added.unchanged:
        response.status_code = 200
        done = ReconcileResult(installs=0, removals=0, scheduled=0, skipped=[])
    else:
        done = reconciled(await library.reconcile(identifier=added.version.identifier), services)
    stored = added.version
    # Never the contents: a profile holds Wi-Fi passwords and keys.
    note(request).targets.append(stored.identifier)
    note(request).detail.update(version=stored.version, unchanged=added.unchanged,
                                payload_types=list(stored.payload_types))  # fmt: skip
    return {"identifier": stored.identifier, "version": stored.version, "installs": done.installs,
            "unchanged": added.unchanged}  # fmt: skip


@router.get("/profiles/{identifier}", response_model=ProfileDetail, responses=refusals(NONE))
async def show_profile(identifier: str, services: ServicesDep, _: Reader) -> ProfileDetail:
    """A profile's versions and assignments (never its contents)."""
    detail = await profile_detail(services.storage, identifier)
    if detail is None:
        raise HTTPException(404, f"no profile {identifier}")
    return detail


async def profile_detail(store: ProfileStore, identifier: str) -> ProfileDetail | None:
    """A profile's versions and assignments as the API and the console show them; None
    when there is no such profile."""
    profile = await store.get_profile(identifier)
    if profile is None:
        return None
    versions = await store.profile_versions(identifier)
    assignments: dict[str, list[str]] = {kind.value: [] for kind in TargetKind}
    for assignment in await store.assignments(identifier):
        assignments[assignment.kind.value].append(assignment.target)
    summary = _summary(profile, versions[-1].payload_types)
    return ProfileDetail(
        **summary.model_dump(),
        versions=[
            {"version": v.version, "created_at": v.created_at, "payload_types": v.payload_types}
            for v in versions
        ],
        assignments=assignments,
    )


@router.get(
    "/profiles/{identifier}/content",
    response_class=Response,
    responses={
        200: {"description": "The latest version's .mobileconfig (unsigned, secrets included)",
              "content": {"application/x-apple-aspen-config": {}}},
        **refusals(NONE, write=True),
    },
)  # fmt: skip
async def profile_content(
    identifier: str,
    services: ServicesDep,
    _: Annotated[Actor, requires(Permission.PROFILE_CONTENTS)],
) -> Response:
    """The latest version's profile as stored, Wi-Fi passwords and keys included: for
    admins only (a viewer or operator token gets 403)."""
    version = await services.storage.profile_version(identifier)
    if version is None or await services.storage.get_profile(identifier) is None:
        raise HTTPException(404, f"no profile {identifier}")
    return Response(version.body, media_type="application/x-apple-aspen-config")


@router.delete(
    "/profiles/{identifier}", response_model=ReconcileResult, responses=refusals(NONE, write=True)
)
@audited("profile.delete")
async def delete_profile(identifier: str, services: ServicesDep, _: Editor) -> ReconcileResult:
    """Forget it; devices that have it get RemoveProfile."""
    try:
        done = await library_of(services).delete(identifier)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return reconciled(done, services)


@router.post(
    "/profiles/{identifier}/assignments",
    response_model=ReconcileResult,
    responses=refusals(NONE, write=True),
)
@audited("profile.assign", _targets)
async def assign(
    identifier: str, body: Targets, services: ServicesDep, _: Assigner
) -> ReconcileResult:
    """Assign the profile to devices, static groups and/or every device; it is installed
    where it is missing. 422 names an unknown device or group."""
    return await _assign(identifier, body, services, assigned=True)


@router.delete(
    "/profiles/{identifier}/assignments",
    response_model=ReconcileResult,
    responses=refusals(NONE, write=True),
)
@audited("profile.unassign", _targets)
async def unassign(
    identifier: str, body: Targets, services: ServicesDep, _: Assigner
) -> ReconcileResult:
    """Take assignments away; devices no longer assigned the profile get RemoveProfile."""
    return await _assign(identifier, body, services, assigned=False)


@router.get(
    "/profiles/{identifier}/status", response_model=list[DeviceState], responses=refusals(NONE)
)
async def profile_status(identifier: str, services: ServicesDep, _: Reader) -> list[DeviceState]:
    """Per device: pending, installed, failed (with the error), removing or removed."""
    if await services.storage.get_profile(identifier) is None:
        rows = await services.storage.device_profiles(identifier=identifier)
        if not rows:
            raise HTTPException(404, f"no profile {identifier}")
    return await device_states(services.storage, identifier, datetime.now(UTC))


async def device_states(store: ProfileStore, identifier: str, now: datetime) -> list[DeviceState]:
    """Each device's state for the profile, as the API and the console show it."""
    return [
        DeviceState(
            udid=row.device_id,
            state=row.state.value,
            desired_version=row.desired_version,
            installed_version=row.installed_version,
            error=row.error,
            updated_at=row.updated_at,
            overdue=overdue(row, now),
        )
        for row in await store.device_profiles(identifier=identifier)
    ]


@router.get("/groups", response_model=dict[str, list[str]], responses=refusals())
async def list_groups(services: ServicesDep, _: Reader) -> dict[str, list[str]]:
    """Static groups and their members' UDIDs."""
    return dict(await services.storage.groups())


@router.put("/groups/{name}", response_model=ReconcileResult, responses=refusals(write=True))
@audited(
    "group.set",
    lambda path, body: ([f"group:{path['name']}", *strings(field_of(body, "devices"))], {}),
)
async def set_group(
    name: Annotated[str, Path(min_length=1, max_length=255)],
    body: Group,
    services: ServicesDep,
    _: Annotated[Actor, requires(Permission.GROUPS_EDIT)],
) -> ReconcileResult:
    """Create or replace a static group; profiles assigned to it follow its members. No
    devices: the group is gone. 422 names an unknown device (nothing changes then)."""
    try:
        done = await library_of(services).set_group(name, body.devices)
    except LookupError as exc:
        raise HTTPException(422, str(exc)) from exc
    return reconciled(done, services)


async def _assign(
    identifier: str, body: Targets, services: ServicesDep, *, assigned: bool
) -> ReconcileResult:
    try:
        done = await library_of(services).assign(
            identifier, devices=body.devices, groups=body.groups, everyone=body.all,
            assigned=assigned,
        )  # fmt: skip
    except LookupError as exc:
        status = 404 if str(exc).startswith("no profile") else 422
        raise HTTPException(status, str(exc)) from exc
    return reconciled(done, services)


def library_of(services: Services) -> ProfileLibrary:
    assert services.profiles is not None
    return services.profiles


def reconciled(done: Reconciled, services: Services) -> ReconcileResult:
    """What a change queued; the pusher is woken when anything was (API and console)."""
    if (done.installs or done.removals) and services.pusher is not None:
        services.pusher.wake()
    return ReconcileResult(installs=done.installs, removals=done.removals,
                           scheduled=done.scheduled, skipped=done.skipped)  # fmt: skip


def _summary(profile: StoredProfile, payload_types: tuple[str, ...]) -> ProfileSummary:
    return ProfileSummary(
        identifier=profile.identifier,
        display_name=profile.display_name,
        latest_version=profile.latest_version,
        payload_types=list(payload_types),
        updated_at=profile.updated_at,
    )
