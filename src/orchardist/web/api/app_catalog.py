"""The app catalog's settings over HTTP (the catalog itself is /apps, orchardist.web.catalog):

- PUT /api/v1/apps/{bundle_id}/catalog: which directory groups see the app at /apps and
  the text shown with it (admins: apps.edit; recorded as `app.catalog`).
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
from orchardist.apps.webclip import catalog_web_clip
from orchardist.storage.apps import DESCRIPTION_MAX_CHARS, AppChanges
from orchardist.web.api.audited import AuditedRoute, audited, field_of, note, strings
from orchardist.web.api.auth import requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.profiles import ProfileStored, library_of, reconciled
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["Apps"],
    dependencies=[Depends(storable_text)],
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
        installs = reconciled(await library.reconcile(), services).installs
    stored = added.version
    note(request).targets.append(stored.identifier)
    note(request).detail.update(version=stored.version, unchanged=added.unchanged,
                                payload_types=list(stored.payload_types))  # fmt: skip
    return ProfileStored(identifier=stored.identifier, version=stored.version,
                         installs=installs, unchanged=added.unchanged)  # fmt: skip
