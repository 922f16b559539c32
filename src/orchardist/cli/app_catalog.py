"""`orchardist app catalog BUNDLE_ID` and `orchardist app catalog-clip`: the app catalog's
settings from the server's shell, as PUT /api/v1/apps/{bundle_id}/catalog, PUT|DELETE
/api/v1/apps/{bundle_id}/icon and POST /api/v1/apps/catalog-clip set them (the same
storage, `apps.admin_icon` and profile library), recorded the same way (`app.catalog`,
`app.icon`, `profile.upload`). Registered on `orchardist app` by cli/main.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchardist.cli.auditing import audited, note
from orchardist.cli.common import fail, print_json, with_services

if TYPE_CHECKING:
    from orchardist.profiles.library import Added
    from orchardist.storage.apps import StoredApp
    from orchardist.wiring import Services

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
MAX_GROUP_CHARS = 255


def _described(args: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    groups = _groups(args.get("group"), args.get("everyone"), args.get("nobody"))
    detail: dict[str, Any] = {} if groups is None else {"groups": groups}
    if args.get("description") is not None:
        detail["description_changed"] = True
    return [str(args.get("bundle_id"))], detail


def _groups(named: list[str] | None, everyone: object, nobody: object) -> list[str] | None:
    if everyone:
        return ["*"]
    if nobody:
        return []
    return [name.strip() for name in named] if named else None


def catalog(
    ctx: typer.Context,
    bundle_id: str,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A directory group whose members see the app (repeat)"),
    ] = None,
    everyone: Annotated[
        bool, typer.Option("--everyone", help="Every signed-in user sees it")
    ] = False,
    nobody: Annotated[bool, typer.Option("--nobody", help="Nobody sees it")] = False,
    description: Annotated[
        str | None, typer.Option("--description", help='Shown with the app ("" for none)')
    ] = None,
    icon: Annotated[
        Path | None,
        typer.Option("--icon", help="A PNG to show instead of the .ipa's icon (57 to 1024 px)"),
    ] = None,
    reset_icon: Annotated[
        bool, typer.Option("--reset-icon", help="Show the .ipa's own icon again")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Who sees an app in the app catalog at /apps, the text and the icon shown with it.
    The groups given replace the app's; without --group, --everyone or --nobody they stay.
    --icon replaces the icon read from the .ipa (a PNG, Apple's CgBI ones too, each side 57
    to 1024 pixels) for every version; --reset-icon goes back to it. With no option, shows
    the current settings. Installs nothing: users install from the catalog."""
    if icon is not None or reset_icon:
        _change_icon(ctx=ctx, bundle_id=bundle_id, icon=icon, reset_icon=reset_icon,
                     as_json=as_json)  # fmt: skip
        if not (group or everyone or nobody or description is not None):
            return
    if not (group or everyone or nobody or description is not None):
        _print(with_services(ctx, lambda services: services.storage.get_app(bundle_id)),
               bundle_id, as_json)  # fmt: skip
        return
    _change(ctx=ctx, bundle_id=bundle_id, group=group, everyone=everyone, nobody=nobody,
            description=description, as_json=as_json)  # fmt: skip


@audited("app.catalog", _described)
def _change(
    *,
    ctx: typer.Context,
    bundle_id: str,
    group: list[str] | None,
    everyone: bool,
    nobody: bool,
    description: str | None,
    as_json: bool,
) -> None:
    from orchardist.storage.apps import DESCRIPTION_MAX_CHARS, AppChanges

    if sum([bool(group), everyone, nobody]) > 1:
        fail("give --group, --everyone or --nobody, not several")
    groups = _groups(group, everyone, nobody)
    if groups and not all(0 < len(name) <= MAX_GROUP_CHARS for name in groups):
        fail(f"a group name has 1 to {MAX_GROUP_CHARS} characters")
    if description is not None and len(description) > DESCRIPTION_MAX_CHARS:
        fail(f"the description has at most {DESCRIPTION_MAX_CHARS} characters")
    changes = AppChanges(description=description, catalog_groups=groups)

    async def change(services: Services) -> StoredApp | None:
        return await services.storage.update_app(bundle_id, changes, datetime.now(UTC))

    _print(with_services(ctx, change), bundle_id, as_json)


@audited("app.icon", lambda args: ([str(args.get("bundle_id"))], {}))
def _change_icon(
    *, ctx: typer.Context, bundle_id: str, icon: Path | None, reset_icon: bool, as_json: bool
) -> None:
    from orchardist.apps.admin_icon import (
        MAX_ICON_UPLOAD_BYTES,
        IconRejectedError,
        NoSuchAppError,
        set_app_icon,
    )

    if icon is not None and reset_icon:
        fail("give --icon or --reset-icon, not both")
    data = None
    if icon is not None:
        try:
            if icon.stat().st_size > MAX_ICON_UPLOAD_BYTES:
                fail(f"{icon} is larger than {MAX_ICON_UPLOAD_BYTES} bytes", "send a smaller PNG")
            data = icon.read_bytes()
        except OSError as exc:
            fail(f"cannot read {icon}: {exc.strerror}")

    async def change(services: Services) -> StoredApp:
        assert services.files is not None, "the file store is wired in open_services"
        return await set_app_icon(services.storage, services.files, bundle_id, data,
                                  lambda: datetime.now(UTC))  # fmt: skip

    try:
        app = with_services(ctx, change)
    except NoSuchAppError:
        fail(f"no app {bundle_id}", "see `orchardist app list`")
    except IconRejectedError as exc:
        fail(str(exc))
    note().detail.update(icon_sha256=app.icon_sha256)
    if as_json:
        print_json({"bundle_id": app.bundle_id, "icon_sha256": app.icon_sha256})
        return
    said = "the .ipa's own icon" if app.icon_sha256 is None else f"icon {app.icon_sha256}"
    typer.echo(f"{app.bundle_id} shows {said}")


def _print(app: StoredApp | None, bundle_id: str, as_json: bool) -> None:
    if app is None:
        fail(f"no app {bundle_id}", "see `orchardist app list`")
    shown = {"bundle_id": app.bundle_id, "groups": list(app.catalog_groups),
             "description": app.description}  # fmt: skip
    if as_json:
        print_json(shown)
        return
    who = "everyone" if "*" in app.catalog_groups else ", ".join(app.catalog_groups)
    typer.echo(f"{app.bundle_id} in the catalog for: {who or 'nobody'}")
    if app.description:
        typer.echo(app.description)


@audited("profile.upload")
def catalog_clip(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Store the app catalog's Web Clip (the catalog on the home screen, full screen, with
    its icon) in the profile library; then assign it like any profile, e.g. to
    directory:sales so it comes with every device a sales user enrolls."""
    from orchardist.apps.webclip import catalog_web_clip

    async def store(services: Services) -> tuple[Added, int]:
        settings, library = services.settings, services.profiles
        assert library is not None
        profile = catalog_web_clip(base_url=settings.base_url, title=settings.apps.catalog_title,
                                   organization=settings.organization)  # fmt: skip
        added = await library.add(profile)
        if added.unchanged:
            return added, 0
        installs = (await library.reconcile(identifier=added.version.identifier)).installs
        return added, installs

    added, installs = with_services(ctx, store)
    stored = added.version
    note().targets.append(stored.identifier)
    note().detail.update(version=stored.version, unchanged=added.unchanged,
                         payload_types=list(stored.payload_types))  # fmt: skip
    if as_json:
        print_json({"identifier": stored.identifier, "version": stored.version,
                    "installs": installs, "unchanged": added.unchanged})  # fmt: skip
        return
    said = "unchanged at" if added.unchanged else "stored as"
    typer.echo(f"{stored.identifier} {said} version {stored.version}; {installs} device(s) "
               "get it now")  # fmt: skip
    typer.echo(f"assign it: orchardist profile assign {stored.identifier} --group directory:sales")
