"""The app catalog's settings over HTTP (the catalog itself is /apps, orchardist.web.catalog):

- PUT /api/v1/apps/{bundle_id}/catalog: which directory groups see the app at /apps and
  the text shown with it (admins: apps.edit; recorded as `app.catalog`).
- PUT|DELETE /api/v1/apps/{bundle_id}/icon: an admin's icon for the app (a PNG as the raw
  body), or back to the .ipa's own (admins: apps.edit; recorded as `app.icon`). Its own
  router (`icons`): the body is an image, read here within a size limit, never as JSON.
- POST /api/v1/apps/catalog-clip: the catalog's Web Clip (orchardist.apps.webclip) stored
  in the profile library, to assign like any profile (admins: profiles.edit; recorded as
  `profile.upload`, as any profile stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from orchardist.accounts.permissions import Actor, Permission
from orchardist.apps.admin_icon import (
    MAX_ICON_UPLOAD_BYTES,
    MAX_SIDE,
    MIN_SIDE,
    IconRejectedError,
    NoSuchAppError,
    set_app_icon,
)
from orchardist.apps.webclip import catalog_web_clip
from orchardist.storage.apps import DESCRIPTION_MAX_CHARS, AppChanges
from orchardist.web.api.audited import AuditedRoute, audited, field_of, note, strings
from orchardist.web.api.auth import requires, services_of
from orchardist.web.api.inputs import storable_params, storable_text
from orchardist.web.api.profiles import ProfileStored, library_of, reconciled
from orchardist.web.api.refusals import refusals
from orchardist.web.bodies import read_limited_body
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["Apps"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
icons = APIRouter(
    prefix="/api/v1",
    tags=["Apps"],
    dependencies=[Depends(storable_params)],
    route_class=AuditedRoute,
)
ServicesDep = Annotated[Services, Depends(services_of)]
AppEditor = Annotated[Actor, requires(Permission.APPS_EDIT)]
ProfileEditor = Annotated[Actor, requires(Permission.PROFILE_EDIT)]
MAX_GROUPS = 100
# A directory group's name (a cn), "directory:NAME" (read as NAME), or "*" for everyone.
CatalogGroup = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
]


class CatalogChange(BaseModel):
    groups: list[CatalogGroup] | None = Field(
        default=None,
        max_length=MAX_GROUPS,
        description='Directory groups whose members see the app at /apps ("sales"; names '
        'compared without case), ["*"] for every signed-in user, [] for nobody; '
        "omitted: unchanged",
    )
    description: str | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX_CHARS,
        description='Shown with the app in the catalog (plain text; "" for none); omitted: '
        "unchanged",
    )


class CatalogShown(BaseModel):
    bundle_id: str
    groups: list[str] = Field(description="Who sees the app at /apps, sorted")
    description: str


class IconShown(BaseModel):
    bundle_id: str
    icon_sha256: str | None = Field(
        description="The admin's icon (SHA-256 of the PNG stored); null: the .ipa's own"
    )


ICON_BODY = {
    "required": True,
    "description": f"A PNG (Apple's CgBI PNGs too), each side {MIN_SIDE} to {MAX_SIDE} pixels",
    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
}


def _described(path: Mapping[str, str], body: Any) -> tuple[list[str], dict[str, Any]]:
    """The app; the groups set, and whether the description changed (not its text)."""
    detail: dict[str, Any] = {}
    if isinstance(field_of(body, "groups"), list):
        detail["groups"] = strings(field_of(body, "groups"))
    if isinstance(field_of(body, "description"), str):
        detail["description_changed"] = True
    return [path["bundle_id"]], detail


@router.put(
    "/apps/{bundle_id}/catalog",
    response_model=CatalogShown,
    responses=refusals((404, "No app with this bundle id"), write=True),
)
@audited("app.catalog", _described)
async def set_catalog(
    bundle_id: str, change: CatalogChange, services: ServicesDep, _: AppEditor
) -> CatalogShown:
    """Who sees the app in the app catalog at /apps, and the text shown with it. A user sees
    the app when one of their directory groups (read at sign-in) is among `groups`, or
    `groups` holds "*". Nothing is installed by this: users install from the catalog."""
    changes = AppChanges(description=change.description, catalog_groups=change.groups)
    app = await services.storage.update_app(bundle_id, changes, datetime.now(UTC))
    if app is None:
        raise HTTPException(404, f"no app {bundle_id} in the library: upload it first")
    return CatalogShown(
        bundle_id=app.bundle_id, groups=list(app.catalog_groups), description=app.description
    )


@icons.put(
    "/apps/{bundle_id}/icon",
    response_model=IconShown,
    responses=refusals(
        (404, "No app with this bundle id"),
        (413, f"Larger than {MAX_ICON_UPLOAD_BYTES} bytes"),
        (422, "Not a PNG, or too small or too large: the reason given"),
        write=True,
    ),
    openapi_extra={"requestBody": ICON_BODY},
)
@audited("app.icon")
async def set_icon(
    bundle_id: str, request: Request, services: ServicesDep, _: AppEditor
) -> IconShown:
    """Replace the app's icon, shown in the catalog at /apps and by iOS while the app
    installs, with the PNG sent as the body (`Content-Type: image/png`). Square or not,
    each side 57 to 1024 pixels (1024 x 1024 is best), at most 4 MiB; an Apple CgBI PNG
    (as found in an .ipa) is converted so browsers show it. The replacement stays for
    every later version; DELETE goes back to the icon read from the .ipa."""
    data = await read_limited_body(request, MAX_ICON_UPLOAD_BYTES)
    return await _set_icon(bundle_id, data, request, services)


@icons.delete(
    "/apps/{bundle_id}/icon",
    response_model=IconShown,
    responses=refusals((404, "No app with this bundle id"), write=True),
)
@audited("app.icon")
async def reset_icon(
    bundle_id: str, request: Request, services: ServicesDep, _: AppEditor
) -> IconShown:
    """Forget the admin's icon: the app shows the icon read from its latest .ipa again
    (none when the .ipa has none). Nothing changes for an app without a replacement."""
    return await _set_icon(bundle_id, None, request, services)


async def _set_icon(
    bundle_id: str, data: bytes | None, request: Request, services: Services
) -> IconShown:
    assert services.files is not None, "the file store is wired in open_services"
    try:
        app = await set_app_icon(services.storage, services.files, bundle_id, data,
                                 lambda: datetime.now(UTC))  # fmt: skip
    except NoSuchAppError as exc:
        raise HTTPException(404, f"no app {bundle_id} in the library: upload it first") from exc
    except IconRejectedError as exc:
        raise HTTPException(422, str(exc)) from exc
    note(request).detail.update(icon_sha256=app.icon_sha256)
    return IconShown(bundle_id=app.bundle_id, icon_sha256=app.icon_sha256)


@router.post(
    "/apps/catalog-clip",
    status_code=201,
    responses={
        201: {"model": ProfileStored, "description": "Stored as a new version"},
        200: {"model": ProfileStored, "description": "The same as the latest version"},
        **refusals(write=True),
    },
)
@audited("profile.upload")
async def store_catalog_clip(
    request: Request, response: Response, services: ServicesDep, _: ProfileEditor
) -> ProfileStored:
    """The app catalog's Web Clip ([apps] catalog_title, the catalog's URL on the public
    base URL, its icon, full screen, removable), stored in the profile library as
    `<hostname reversed>.app-catalog`. Assign it like any profile: to `all`, or to
    `directory:sales` so it comes with every device a sales user enrolls. Again after
    changing the title or hostname: a new version, installed where it is assigned."""
    settings = services.settings
    profile = catalog_web_clip(
        base_url=settings.base_url,
        title=settings.apps.catalog_title,
        organization=settings.organization,
    )
    library = library_of(services)
    added = await library.add(profile)
    installs = 0
    if added.unchanged:
        response.status_code = 200
    else:
        done = await library.reconcile(identifier=added.version.identifier)
        installs = reconciled(done, services).installs
    stored = added.version
    note(request).targets.append(stored.identifier)
    note(request).detail.update(version=stored.version, unchanged=added.unchanged,
                                payload_types=list(stored.payload_types))  # fmt: skip
    return ProfileStored(identifier=stored.identifier, version=stored.version,
                         installs=installs, unchanged=added.unchanged)  # fmt: skip
