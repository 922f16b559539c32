"""`orchardist app …`: the in-house app library — upload, list, show, assign / unassign,
per-device status, remove. The same library and presenter as /api/v1/apps
(orchardist.apps.library, orchardist.apps.views).

The CLI never sends installs itself: assigning or uploading marks what each device should
get, and the running server (`orchardist serve`) sends it at the configured pace and pushes
the devices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Column, Table

from orchardist.cli.auditing import audited, named, note
from orchardist.cli.common import WideOption, fail, print_json, table_console, with_services
from orchardist.cli.targets import (
    DeviceOption,
    EveryoneOption,
    GroupOption,
    assignment_targets,
)

if TYPE_CHECKING:
    from orchardist.apps.library import AppLibrary, Reconciled, Uploaded
    from orchardist.apps.views import AppDetail, AppSummary
    from orchardist.wiring import Services

app = typer.Typer(
    help="In-house apps (.ipa): upload (every device that has the app gets a new version), "
    "assign, follow, remove."
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
LIST_HINT = "see `orchardist app list`"
CHUNK = 1024 * 1024
PROGRESS_FROM = 8 * CHUNK  # smaller files upload before a bar would show


@app.command("upload")
@audited("app.upload", lambda args: ([args["expect"]], {"file": args["file"].name}))
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="An .ipa, signed for in-house distribution")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Store it even when this version is there")
    ] = False,
    expect: Annotated[
        str | None,
        typer.Option("--app", help="A new version of this app: another bundle id is refused"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Store an .ipa as the next version of its app; devices that have the app or are
    assigned it get the new version through the server's paced roll-out. The same version
    (short version and build) twice needs --replace. Prints the bundle id and version."""
    from orchardist.apps.files import FileStoreError, FileTooLargeError
    from orchardist.apps.library import AppExistsError, AppRejectedError
    from orchardist.apps.views import upload_summary

    try:
        size = file.stat().st_size
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")

    async def store(services: Services) -> Uploaded:
        library = library_of(services)
        if expect is not None and await services.storage.get_app(expect) is None:
            raise LookupError(f"no app {expect}")
        with Progress(transient=True, disable=as_json or size < PROGRESS_FROM) as bar:
            task = bar.add_task(f"uploading {file.name}", total=size)
            with file.open("rb") as handle:

                def chunks() -> Any:
                    while piece := handle.read(CHUNK):
                        bar.advance(task, len(piece))
                        yield piece

                stored = await library.receive(chunks())
            bar.update(task, description="reading the .ipa")
            return await library.add(stored, replace=replace, expect_bundle_id=expect)

    try:
        done = with_services(ctx, store)
    except AppExistsError as exc:
        fail(str(exc), "add --replace to store this file in its place")
    except AppRejectedError as exc:
        fail(f"{file}: {exc}", "nothing was stored")
    except FileTooLargeError as exc:
        fail(f"{file}: {exc}", "raise [apps] max_upload_mb in the settings to take it")
    except (FileStoreError, OSError) as exc:
        fail(f"{file}: {exc}", "nothing was stored")
    except LookupError as exc:
        fail(str(exc), f"upload its first version without --app; {LIST_HINT}")
    summary = upload_summary(done)
    note().targets.append(summary.bundle_id)
    note().detail.update(version=summary.version, build=summary.build,
                         version_id=summary.version_id, sha256=summary.sha256,
                         replaced=summary.replaced)  # fmt: skip
    if as_json:
        print_json(summary)
        return
    typer.echo(f"{'replaced' if summary.replaced else 'uploaded'} {summary.bundle_id} "
               f"{summary.version} (build {summary.build}): version {summary.version_id} of "
               f"{summary.display_name}")  # fmt: skip
    if summary.updating:
        typer.echo(f"{summary.updating} device(s) get it through the server's roll-out; see "
                   f"`orchardist app status {summary.bundle_id}`")  # fmt: skip
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command("list")
def list_apps(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Apps in the library with their latest version, links and warnings."""
    from orchardist.apps.views import app_summaries

    async def load(services: Services) -> list[AppSummary]:
        assert services.app_urls is not None
        return await app_summaries(services.storage, services.app_urls, datetime.now(UTC))

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No apps (see `orchardist app upload`).")
    for row in rows:
        typer.echo(f"{row.bundle_id}  {row.version} ({row.build})  {row.display_name}  "
                   f"{row.versions} version(s)")  # fmt: skip
        for warning in row.warnings:
            typer.echo(f"  warning: {warning}")


@app.command("show")
def show(ctx: typer.Context, bundle_id: str, as_json: JsonOption = False) -> None:
    """One app: its versions, assignments, devices per state, warnings and install link."""
    from orchardist.apps.views import app_detail

    async def load(services: Services) -> AppDetail | None:
        assert services.app_urls is not None
        now = datetime.now(UTC)
        return await app_detail(services.storage, services.app_urls, bundle_id, now)

    found = with_services(ctx, load)
    if found is None:
        fail(f"no app {bundle_id}", LIST_HINT)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found.display_name}  {found.bundle_id}")
    for version in found.history:
        typer.echo(f"v{version.version_id}  {version.version} ({version.build})  "
                   f"{version.size:,} bytes  {version.created_at:%Y-%m-%d %H:%M}")  # fmt: skip
    assigned = [f"{kind}:{target}" if target else kind
                for kind, targets in found.assignments.items() for target in targets]  # fmt: skip
    typer.echo(f"assigned to: {', '.join(assigned) or 'nobody'}")
    states = ", ".join(f"{count} {state}" for state, count in found.states.items())
    typer.echo(f"devices: {states or 'none'}")
    for warning in found.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"install link: {found.install_link}")


def _targets_command(assigned: bool) -> Any:
    def command(
        ctx: typer.Context,
        bundle_id: str,
        device: DeviceOption = None,
        group: GroupOption = None,
        everyone: EveryoneOption = False,
        as_json: JsonOption = False,
    ) -> None:
        done = _changed(ctx, lambda apps: apps.assign(bundle_id, devices=device or [],
                                                      groups=group or [], everyone=everyone,
                                                      assigned=assigned))  # fmt: skip
        if as_json:
            print_json({"installs": done.installs, "removals": done.removals})
        else:
            typer.echo(f"{done.installs} device(s) get the app through the server's roll-out; "
                       f"{done.removals} RemoveApplication queued; see "
                       f"`orchardist app status {bundle_id}`")  # fmt: skip

    action = "app.assign" if assigned else "app.unassign"
    command = audited(action, assignment_targets("bundle_id"))(command)
    command.__doc__ = (
        "Assign an app to devices, groups or all; the server installs it where it is "
        "missing, at the configured pace."
        if assigned
        else "Unassign an app; devices that no longer have it assigned get RemoveApplication."
    )
    return command


app.command("assign")(_targets_command(True))
app.command("unassign")(_targets_command(False))


@app.command("status")
def status(
    ctx: typer.Context, bundle_id: str, as_json: JsonOption = False, wide: WideOption = False
) -> None:
    """Each device's state for an app: update_pending, queued, installing, prompting,
    managed, user_declined, user_installed, failed (why), missing, removing, removed."""

    async def load(services: Services) -> list[dict[str, Any]] | None:
        if await services.storage.get_app(bundle_id) is None:
            return None
        return [
            {"udid": r.device_id, "state": r.state.value, "installed": r.installed_version,
             "installed_version_id": r.installed_version_id,
             "desired_version_id": r.desired_version_id, "error": r.error,
             "attempts": r.attempts, "next_attempt_at": r.next_attempt_at}
            for r in await services.storage.device_apps(bundle_id=bundle_id)
        ]  # fmt: skip

    rows = with_services(ctx, load)
    if rows is None:
        fail(f"no app {bundle_id}", LIST_HINT)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"No device has {bundle_id} (see `orchardist app assign`).")
        return
    table = Table(Column("device", no_wrap=True), "state", "has", "wanted", "why", title=bundle_id)
    for row in rows:
        has = row["installed"] or (f"v{row['installed_version_id']}"
                                   if row["installed_version_id"] else "-")  # fmt: skip
        wanted = f"v{row['desired_version_id']}" if row["desired_version_id"] else "-"
        table.add_row(row["udid"], row["state"], has, wanted, row["error"] or "")
    table_console(wide).print(table)


@app.command("remove")
@audited("app.remove", named("bundle_id"))
def remove(ctx: typer.Context, bundle_id: str) -> None:
    """Forget an app (its versions, files and assignments); devices that have it get
    RemoveApplication."""

    done = _changed(ctx, lambda apps: apps.remove(bundle_id))
    typer.echo(f"removed {bundle_id}; {done.removals} device(s) get RemoveApplication")


def _changed(
    ctx: typer.Context, change: Callable[[AppLibrary], Awaitable[Reconciled]]
) -> Reconciled:
    """Run an assignment or a removal; an unknown app or device ends the command."""

    async def run(services: Services) -> Reconciled:
        return await change(library_of(services))

    try:
        return with_services(ctx, run)
    except LookupError as exc:
        fail(str(exc), f"{LIST_HINT} and `orchardist device list`")


def library_of(services: Services) -> AppLibrary:
    assert services.apps is not None
    return services.apps
