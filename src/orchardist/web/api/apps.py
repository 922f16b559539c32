"""/api/v1/apps: the in-house app library over HTTP (see orchardist.apps.library).

Uploads are streamed: the multipart body is parsed as it arrives (`web.upload_stream`)
and its `file` part written straight into the file store, so the server never holds an
.ipa in memory. Two uploads of the same version at once make one version: the other is
answered 409, as any second upload of a version is (unless `replace`). Links in the
answers (manifest, icon, itms-services) are signed and expire (`[apps] link_ttl_seconds`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from orchardist.accounts.permissions import Actor, Permission
from orchardist.apps.files import FileStoreError, FileTooLargeError
from orchardist.apps.library import AppExistsError, AppLibrary, AppRejectedError, Reconciled
from orchardist.apps.urls import AppUrls
from orchardist.apps.views import (
    AppDetail,
    AppSummary,
    UploadSummary,
    app_detail,
    app_summaries,
    upload_summary,
)
from orchardist.web.api.audited import AuditedRoute, audited, field_of, note, strings
from orchardist.web.api.auth import Reader, requires, services_of
from orchardist.web.api.inputs import storable_params, storable_text
from orchardist.web.api.profiles import Targets
from orchardist.web.api.refusals import refusals
from orchardist.web.upload_stream import StreamedUpload, UploadError
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["Apps"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
# The uploads' bodies are streams: only their path and query are checked beforehand.
uploads = APIRouter(
    prefix="/api/v1",
    tags=["Apps"],
    dependencies=[Depends(storable_params)],
    route_class=AuditedRoute,
)
ServicesDep = Annotated[Services, Depends(services_of)]
Editor = Annotated[Actor, requires(Permission.APPS_EDIT)]
Assigner = Annotated[Actor, requires(Permission.APPS_ASSIGN)]
NONE = (404, "No app with this bundle id")
UPLOAD_REFUSALS = refusals(
    (400, "The upload was cut off before its end (nothing was stored)"),
    (409, "This version (short version and build) is uploaded already: send replace=true"),
    (413, "Larger than [apps] max_upload_mb"),
    (415, "Neither multipart/form-data nor application/octet-stream"),
    (
        422,
        "Not an .ipa we take (not a zip, a zip bomb, no Info.plist, an expired or "
        "mismatched provisioning profile…): {problems: [...]} names each",
    ),
    (507, "The server could not store the file (a full disk): the detail says what to do"),
    write=True,
)
UPLOAD_BODY = {
    "required": True,
    "description": "The .ipa: a multipart form with the file as field `file` (and optionally "
    "`replace`), or the bare file as application/octet-stream",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "replace": {"type": "boolean"},
                },
            }
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
Replace = Annotated[
    bool,
    Query(description="Store it even when this version was uploaded before (its file replaced)"),
]


STATES = (
    "update_pending, queued, installing, prompting, managed, user_declined, "
    "user_installed, failed, missing, removing or removed"
)


class AppListed(BaseModel):
    bundle_id: str
    display_name: str
    version: str = Field(description="The latest version (CFBundleShortVersionString)")
    build: str = Field(description="Its build (CFBundleVersion)")
    version_id: int = Field(description="Its number in the library: 1, 2, … per app")
    versions: int = Field(description="Versions stored")
    size: int = Field(description="Bytes of the latest .ipa")
    minimum_os: str | None
    device_family: list[int] = Field(description="UIDeviceFamily: 1 iPhone, 2 iPad")
    manifest_url: str = Field(description="The latest version's manifest (signed, expiring)")
    icon_url: str | None = Field(description="Its icon, a PNG (signed, expiring)")
    install_link: str = Field(description="itms-services:// link for Safari on a device")
    warnings: list[str] = Field(description="What to act on: expiry, no profile, no icon…")
    updated_at: datetime


class VersionListed(BaseModel):
    version_id: int
    version: str
    build: str
    size: int
    sha256: str
    minimum_os: str | None
    provisioning_expires_at: datetime | None
    created_at: datetime


class AppShown(AppListed):
    description: str
    catalog_groups: list[str]
    history: list[VersionListed] = Field(description="Every version, oldest first")
    assignments: dict[str, list[str]] = Field(description="device / group / all")
    states: dict[str, int] = Field(description="Devices per state (managed, failed, …)")


class AppStored(BaseModel):
    bundle_id: str
    version: str
    build: str
    version_id: int
    display_name: str
    size: int
    sha256: str
    replaced: bool = Field(description="This version was there: its file was replaced")
    updating: int = Field(description="Devices that get it through the paced roll-out")
    warnings: list[str]


class AppsReconciled(BaseModel):
    installs: int = Field(description="Devices that get the app through the paced roll-out")
    removals: int = Field(description="Devices sent RemoveApplication")


class DeviceAppState(BaseModel):
    udid: str
    state: str = Field(description=STATES)
    desired_version_id: int | None
    installed_version_id: int | None
    installed_version: str | None = Field(description="As the device reports it: 1.2 (45)")
    error: str | None = Field(description="Why it failed or was declined, in words")
    attempts: int = Field(description="InstallApplication commands sent for this version")
    next_attempt_at: datetime | None = Field(description="When the roll-out looks again")
    updated_at: datetime


def _targets(path: Mapping[str, str], body: Any) -> tuple[list[str], dict[str, Any]]:
    """The app, then the devices, `group:NAME`s and `all` it is (un)assigned."""
    groups = [f"group:{name}" for name in strings(field_of(body, "groups"))]
    everyone = ["all"] if field_of(body, "all") is True else []
    return [path["bundle_id"], *strings(field_of(body, "devices")), *groups, *everyone], {}


@router.get("/apps", response_model=list[AppListed], responses=refusals())
async def list_apps(services: ServicesDep, _: Reader) -> list[AppSummary]:
    """Every app in the library with its latest version, links and warnings."""
    return await app_summaries(services.storage, urls_of(services), datetime.now(UTC))


@uploads.post(
    "/apps",
    status_code=201,
    response_model=AppStored,
    responses={201: {"model": AppStored, "description": "Stored as a new version"},
               200: {"model": AppStored, "description": "Replaced (replace=true)"},
               **UPLOAD_REFUSALS},
    openapi_extra={"requestBody": UPLOAD_BODY},
)  # fmt: skip
@audited("app.upload")
async def upload_app(
    request: Request, response: Response, services: ServicesDep, _: Editor, replace: Replace = False
) -> UploadSummary:
    """An .ipa, streamed: stored as the next version of its bundle id; every device that
    has the app or is assigned it gets the new version through the paced roll-out."""
    return await _upload(request, response, services, replace, None)


@uploads.post(
    "/apps/{bundle_id}/versions",
    status_code=201,
    response_model=AppStored,
    responses={201: {"model": AppStored, "description": "Stored as a new version"},
               200: {"model": AppStored, "description": "Replaced (replace=true)"},
               **UPLOAD_REFUSALS, **refusals(NONE)},
    openapi_extra={"requestBody": UPLOAD_BODY},
)  # fmt: skip
@audited("app.upload")
async def upload_version(
    bundle_id: str,
    request: Request,
    response: Response,
    services: ServicesDep,
    _: Editor,
    replace: Replace = False,
) -> UploadSummary:
    """As POST /api/v1/apps, for a new version of this app: an .ipa of another bundle id
    is refused (422); 404 before anything is read when there is no such app."""
    if await services.storage.get_app(bundle_id) is None:
        raise HTTPException(404, f"no app {bundle_id}: upload its first version to /api/v1/apps")
    return await _upload(request, response, services, replace, bundle_id)


async def _upload(
    request: Request, response: Response, services: Services, replace: bool, app: str | None
) -> UploadSummary:
    library = library_of(services)
    upload = StreamedUpload(request)
    try:
        async with contextlib.aclosing(upload.chunks()) as chunks:
            stored = await library.receive(chunks)
        replace = replace or upload.fields.get("replace", "").lower() in ("1", "true", "on")
        done = await library.add(stored, replace=replace, expect_bundle_id=app)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    except FileTooLargeError as exc:
        raise HTTPException(413, f"{exc}: raise [apps] max_upload_mb to take it") from exc
    except FileStoreError as exc:
        raise HTTPException(507, str(exc)) from exc
    except AppExistsError as exc:
        raise HTTPException(409, str(exc)) from exc
    except AppRejectedError as exc:
        raise HTTPException(422, {"problems": exc.problems}) from exc
    version = done.version
    note(request).targets.append(version.bundle_id)
    note(request).detail.update(version=version.short_version, build=version.build,
                                version_id=version.version_id, sha256=version.sha256,
                                replaced=done.replaced)  # fmt: skip
    response.status_code = 200 if done.replaced else 201
    return upload_summary(done)


@router.get("/apps/{bundle_id}", response_model=AppShown, responses=refusals(NONE))
async def show_app(bundle_id: str, services: ServicesDep, _: Reader) -> AppDetail:
    """An app's versions, assignments, devices per state and warnings."""
    found = await app_detail(services.storage, urls_of(services), bundle_id, datetime.now(UTC))
    if found is None:
        raise HTTPException(404, f"no app {bundle_id}")
    return found


@router.delete(
    "/apps/{bundle_id}", response_model=AppsReconciled, responses=refusals(NONE, write=True)
)
@audited("app.remove")
async def remove_app(bundle_id: str, services: ServicesDep, _: Editor) -> AppsReconciled:
    """Forget the app (versions, files, assignments); devices that have it get
    RemoveApplication."""
    try:
        done = await library_of(services).remove(bundle_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return reconciled(done, services)


@router.post(
    "/apps/{bundle_id}/assignments",
    response_model=AppsReconciled,
    responses=refusals(NONE, write=True),
)
@audited("app.assign", _targets)
async def assign(
    bundle_id: str, body: Targets, services: ServicesDep, _: Assigner
) -> AppsReconciled:
    """Assign the app to devices, static groups and/or every device: where it is missing it
    is installed through the paced roll-out. 422 names an unknown device."""
    return await _assign(bundle_id, body, services, assigned=True)


@router.delete(
    "/apps/{bundle_id}/assignments",
    response_model=AppsReconciled,
    responses=refusals(NONE, write=True),
)
@audited("app.unassign", _targets)
async def unassign(
    bundle_id: str, body: Targets, services: ServicesDep, _: Assigner
) -> AppsReconciled:
    """Take assignments away; devices no longer assigned the app get RemoveApplication."""
    return await _assign(bundle_id, body, services, assigned=False)


@router.get(
    "/apps/{bundle_id}/status", response_model=list[DeviceAppState], responses=refusals(NONE)
)
async def app_status(bundle_id: str, services: ServicesDep, _: Reader) -> list[DeviceAppState]:
    """Per device: the app's state (managed, installing, user declined, failed with the
    reason…), the version it has and when the roll-out looks again."""
    if await services.storage.get_app(bundle_id) is None:
        raise HTTPException(404, f"no app {bundle_id}")
    rows = await services.storage.device_apps(bundle_id=bundle_id)
    return [
        DeviceAppState(
            udid=row.device_id,
            state=row.state.value,
            desired_version_id=row.desired_version_id,
            installed_version_id=row.installed_version_id,
            installed_version=row.installed_version,
            error=row.error,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


async def _assign(
    bundle_id: str, body: Targets, services: Services, *, assigned: bool
) -> AppsReconciled:
    try:
        done = await library_of(services).assign(
            bundle_id, devices=body.devices, groups=body.groups, everyone=body.all,
            assigned=assigned,
        )  # fmt: skip
    except LookupError as exc:
        status = 404 if str(exc).startswith("no app") else 422
        raise HTTPException(status, str(exc)) from exc
    return reconciled(done, services)


def library_of(services: Services) -> AppLibrary:
    assert services.apps is not None
    return services.apps


def urls_of(services: Services) -> AppUrls:
    assert services.app_urls is not None
    return services.app_urls


def reconciled(done: Reconciled, services: Services) -> AppsReconciled:
    """What a change set going; removals are queued now: the pusher is woken."""
    if done.removals and services.pusher is not None:
        services.pusher.wake()
    return AppsReconciled(installs=done.installs, removals=done.removals)
