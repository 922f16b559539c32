"""`orchardist profile …`: the profile library (versions, assignments, per-device status);
`build` and `validate` work on files (cli/profile_files.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from orchardist.cli import profile_files
from orchardist.cli.auditing import audited, named, note
from orchardist.cli.common import WideOption, fail, print_json, table_console, with_services
from orchardist.cli.targets import (
    DeviceOption,
    EveryoneOption,
    GroupOption,
    assignment_targets,
)

if TYPE_CHECKING:
    from orchardist.profiles.library import Added, ProfileLibrary, Reconciled
    from orchardist.wiring import Services

app = typer.Typer(help="Configuration profiles: build from a spec, validate any profile.")
app.command("build")(profile_files.build)
app.command("validate")(profile_files.validate)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("upload")
@audited("profile.upload", lambda args: ([], {"file": args["file"].name}))
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A .mobileconfig (signed or not) or a spec (.toml)")],
    as_json: JsonOption = False,
) -> None:
    """Store a profile as the next version of its identifier (devices that have it get the
    new version). The same content as the latest version stores nothing: "unchanged"."""
    from orchardist.profiles import envelope
    from orchardist.profiles.library import ProfileRejectedError

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    spec = envelope.kind_of(data, file.name) == "spec"
    profile = profile_files.load_spec_warning(file) if spec else None

    async def store(services: Services) -> tuple[Added, Reconciled | None]:
        library = library_of(services)
        added = await (library.add(profile) if profile is not None else library.upload(data))
        if added.unchanged:
            return added, None
        return added, await library.reconcile(identifier=added.version.identifier)

    try:
        added, done = with_services(ctx, store)
    except ProfileRejectedError as exc:
        fail(f"{file}: {exc}", "nothing was stored")
    stored, installs = added.version, done.installs if done else 0
    note().targets.append(stored.identifier)  # never the contents: they hold secrets
    note().detail.update(version=stored.version, unchanged=added.unchanged,
                         payload_types=list(stored.payload_types))  # fmt: skip
    if as_json:
        print_json({"identifier": stored.identifier, "version": stored.version,
                    "installs": installs, "unchanged": added.unchanged})  # fmt: skip
    elif added.unchanged:
        typer.echo(f"unchanged: version {stored.version} of {stored.identifier} has this "
                   "content already; nothing stored, nothing reinstalled")  # fmt: skip
    else:
        typer.echo(
            f"stored {stored.identifier} version {stored.version}"
            f"{f'; {installs} device(s) get it now' if installs else ''}"
        )


@app.command("list")
def list_profiles(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Profiles in the library, with their latest version."""

    async def load(services: Services) -> list[dict[str, Any]]:
        return [
            {"identifier": p.identifier, "name": p.display_name, "version": p.latest_version}
            for p in await services.storage.list_profiles()
        ]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['identifier']}  v{row['version']}  {row['name']}")


@app.command("show")
def show(ctx: typer.Context, identifier: str, as_json: JsonOption = False) -> None:
    """Versions, payload types and assignments (never the contents: they hold secrets)."""

    async def load(services: Services) -> dict[str, Any] | None:
        store = services.storage
        if await store.get_profile(identifier) is None:
            return None
        versions = await store.profile_versions(identifier)
        return {
            "identifier": identifier,
            "versions": [{"version": v.version, "created_at": v.created_at.isoformat(),
                          "payload_types": list(v.payload_types)} for v in versions],
            "assignments": [f"{a.kind.value}:{a.target}" if a.target else a.kind.value
                            for a in await store.assignments(identifier)],
        }  # fmt: skip

    found = with_services(ctx, load)
    if found is None:
        fail(f"no profile {identifier}", "see `orchardist profile list`")
    if as_json:
        print_json(found)
        return
    for version in found["versions"]:
        typer.echo(f"v{version['version']}  {version['created_at']}  "
                   f"{', '.join(version['payload_types'])}")  # fmt: skip
    typer.echo(f"assigned to: {', '.join(found['assignments']) or 'nobody'}")


def _targets_command(assigned: bool) -> Any:
    def command(
        ctx: typer.Context,
        identifier: str,
        device: DeviceOption = None,
        group: GroupOption = None,
        everyone: EveryoneOption = False,
        as_json: JsonOption = False,
    ) -> None:
        async def change(services: Services) -> Reconciled:
            return await library_of(services).assign(
                identifier, devices=device or [], groups=group or [], everyone=everyone,
                assigned=assigned,
            )  # fmt: skip

        try:
            done = with_services(ctx, change)
        except LookupError as exc:
            fail(str(exc), "see `orchardist profile list` and `orchardist device list`")
        if as_json:
            print_json({"installs": done.installs, "removals": done.removals,
                        "skipped": done.skipped})  # fmt: skip
        else:
            typer.echo(f"{done.installs} InstallProfile and {done.removals} RemoveProfile "
                       "queued; see `orchardist profile status`")  # fmt: skip

    action = "profile.assign" if assigned else "profile.unassign"
    command = audited(action, assignment_targets("identifier"))(command)
    command.__doc__ = (
        "Assign a profile to devices, groups or all; devices get it at once."
        if assigned
        else "Unassign a profile; devices that no longer have it assigned get RemoveProfile."
    )
    return command


app.command("assign")(_targets_command(True))
app.command("unassign")(_targets_command(False))


@app.command("status")
def status(
    ctx: typer.Context, identifier: str, as_json: JsonOption = False, wide: WideOption = False
) -> None:
    """Each device's state for a profile: pending, installed, failed (why), missing,
    removing, removed; overdue when pending for over a day."""
    from orchardist.profiles.library import overdue

    async def load(services: Services) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {"udid": r.device_id, "state": r.state.value, "installed_version": r.installed_version,
             "desired_version": r.desired_version, "error": r.error, "overdue": overdue(r, now)}
            for r in await services.storage.device_profiles(identifier=identifier)
        ]  # fmt: skip

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"No device has {identifier} assigned (see `orchardist profile assign`).")
        return
    table = Table(Column("device", no_wrap=True), "state", "installed", "wanted", "why",
                  title=identifier)  # fmt: skip
    for row in rows:
        state = f"{row['state']} (overdue)" if row["overdue"] else row["state"]
        installed, wanted = (f"v{row[k]}" if row[k] else "-"
                             for k in ("installed_version", "desired_version"))  # fmt: skip
        table.add_row(row["udid"], state, installed, wanted, row["error"] or "")
    table_console(wide).print(table)


@app.command("delete")
@audited("profile.delete", named("identifier"))
def delete(ctx: typer.Context, identifier: str) -> None:
    """Forget a profile; devices that have it get RemoveProfile."""

    async def forget(services: Services) -> Reconciled:
        return await library_of(services).delete(identifier)

    try:
        done = with_services(ctx, forget)
    except LookupError as exc:
        fail(str(exc))
    typer.echo(f"deleted {identifier}; {done.removals} device(s) get RemoveProfile")


def library_of(services: Services) -> ProfileLibrary:
    assert services.profiles is not None
    return services.profiles
