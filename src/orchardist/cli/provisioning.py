"""`orchardist provisioning …`: provisioning profiles — upload (with renewal), list, show,
assign / unassign, per-device status, remove. The same library as /api/v1/provisioning-profiles
(orchardist.apps.provisioning_library)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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
    from orchardist.apps.provisioning_library import (
        ProvisioningLibrary,
        Queued,
        UploadedProvisioning,
    )
    from orchardist.storage.provisioning import StoredProvisioningProfile
    from orchardist.wiring import Services

app = typer.Typer(
    help="Provisioning profiles: upload (a renewal replaces the old one on every device "
    "holding it), assign, follow, remove."
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
LIST_HINT = "see `orchardist provisioning list`"


@app.command("upload")
@audited("provisioning.upload", lambda args: ([], {"file": args["file"].name}))
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A .mobileprovision from Apple's developer site")],
    as_json: JsonOption = False,
) -> None:
    """Verify and store a provisioning profile. One for an app id whose stored profiles
    expire earlier renews them: each device holding an old one gets this one, and the old
    one is removed there once this one is confirmed. An expired, malformed or forged
    profile is refused (nothing stored)."""
    from orchardist.apps.provisioning_library import ProvisioningRejectedError
    from orchardist.storage.provisioning import PROVISIONING_MAX_BYTES

    try:
        with file.open("rb") as handle:
            data = handle.read(PROVISIONING_MAX_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")

    async def store(services: Services) -> UploadedProvisioning:
        # What it queues is pushed by the running server (its pusher polls the jobs).
        return await library_of(services).upload(data)

    try:
        uploaded = with_services(ctx, store)
    except ProvisioningRejectedError as exc:
        fail(f"{file}: {exc}", "nothing was stored")
    stored = uploaded.profile
    note().targets.append(stored.uuid)
    note().detail.update(name=stored.name, app_id=stored.app_id, unchanged=uploaded.unchanged,
                         replaces=uploaded.replaces)  # fmt: skip
    if as_json:
        print_json({**_row(stored, datetime.now(UTC)), "unchanged": uploaded.unchanged,
                    "warnings": list(uploaded.warnings), "replaces": uploaded.replaces,
                    "installs": uploaded.installs, "asked": uploaded.asked,
                    "signer": uploaded.signer})  # fmt: skip
        return
    typer.echo(f"{'unchanged' if uploaded.unchanged else 'stored'}: {stored.name}")
    typer.echo(f"  uuid     {stored.uuid}")
    typer.echo(f"  app id   {stored.app_id} (team {stored.team_id})")
    typer.echo(f"  expires  {stored.expires_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(f"  signer   {uploaded.signer}")
    if uploaded.unchanged:
        typer.echo("this UUID was stored already: nothing changed")
    elif uploaded.replaces:
        typer.echo(
            f"renews {', '.join(uploaded.replaces)}: {uploaded.installs} device(s) get it now; "
            "each removes the old profile once it has confirmed this one"
        )
        if uploaded.asked:
            typer.echo(f"{uploaded.asked} other device(s) asked for their profiles: those "
                       "an app brought the old profile to get this one too")  # fmt: skip
    elif uploaded.installs:
        typer.echo(f"{uploaded.installs} device(s) assigned it get it now")
    else:
        typer.echo("renews nothing; `orchardist provisioning assign` installs it on devices")
    for warning in uploaded.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command("list")
def list_profiles(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Provisioning profiles by app id, latest expiry first, with expiry warnings."""

    async def load(services: Services) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [_row(p, now) for p in await services.storage.list_provisioning_profiles()]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No provisioning profiles (see `orchardist provisioning upload`).")
    for row in rows:
        state = f"renewed by {row['replaced_by']}" if row["replaced_by"] else row["expiry"]
        typer.echo(f"{row['uuid']}  {row['app_id']}  {row['name']}  {state}")


@app.command("show")
def show(ctx: typer.Context, uuid: str, as_json: JsonOption = False) -> None:
    """One profile: expiry, what it renewed or what renewed it, its assignments and how
    many devices hold it."""

    async def load(services: Services) -> dict[str, Any] | None:
        store = services.storage
        profile = await store.get_provisioning_profile(uuid)
        if profile is None:
            return None
        siblings = await store.list_provisioning_profiles(app_id=profile.app_id)
        return {
            **_row(profile, datetime.now(UTC)),
            "replaces": [p.uuid for p in siblings if p.replaced_by == uuid],
            "assignments": [f"{a.kind.value}:{a.target}" if a.target else a.kind.value
                            for a in await store.provisioning_assignments(uuid)],
            "holders": len(await store.provisioning_holders(uuid)),
        }  # fmt: skip

    found = with_services(ctx, load)
    if found is None:
        fail(f"no provisioning profile {uuid}", LIST_HINT)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['name']}  {found['app_id']} (team {found['team_id']})")
    typer.echo(f"{found['expiry']} ({found['expires_at'][:10]})")
    if found["warning"]:
        typer.echo(f"warning: {found['warning']}")
    if found["replaced_by"]:
        typer.echo(f"renewed by {found['replaced_by']}")
    if found["replaces"]:
        typer.echo(f"renews {', '.join(found['replaces'])}")
    typer.echo(f"assigned to: {', '.join(found['assignments']) or 'nobody'}")
    typer.echo(f"held by {found['holders']} device(s); see `orchardist provisioning status`")


def _targets_command(assigned: bool) -> Any:
    def command(
        ctx: typer.Context,
        uuid: str,
        device: DeviceOption = None,
        group: GroupOption = None,
        everyone: EveryoneOption = False,
        as_json: JsonOption = False,
    ) -> None:
        from orchardist.apps.provisioning_library import ProvisioningConflictError

        async def change(services: Services) -> Queued:
            return await library_of(services).assign(
                uuid, devices=device or [], groups=group or [], everyone=everyone,
                assigned=assigned,
            )  # fmt: skip

        try:
            done = with_services(ctx, change)
        except ProvisioningConflictError as exc:
            fail(str(exc), LIST_HINT)
        except LookupError as exc:
            fail(str(exc), f"{LIST_HINT} and `orchardist device list`")
        if as_json:
            print_json({"installs": done.installs, "removals": done.removals})
        else:
            typer.echo(
                f"{done.installs} InstallProvisioningProfile and {done.removals} "
                "RemoveProvisioningProfile queued; see `orchardist provisioning status`"
            )

    action = "provisioning.assign" if assigned else "provisioning.unassign"
    command = audited(action, assignment_targets("uuid"))(command)
    command.__doc__ = (
        "Assign a provisioning profile to devices, groups or all; devices get it at once."
        if assigned
        else "Unassign a provisioning profile; devices we installed it on that no longer "
        "have it assigned get RemoveProvisioningProfile."
    )
    return command


app.command("assign")(_targets_command(True))
app.command("unassign")(_targets_command(False))


@app.command("status")
def status(
    ctx: typer.Context, uuid: str, as_json: JsonOption = False, wide: WideOption = False
) -> None:
    """Each device's state for a provisioning profile: pending, installed, failed (why),
    missing, removing, removed."""

    async def load(services: Services) -> list[dict[str, Any]]:
        return [
            {"udid": r.device_id, "state": r.state.value, "error": r.error,
             "updated_at": r.updated_at}
            for r in await services.storage.device_provisioning(uuid=uuid)
        ]  # fmt: skip

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"No device was sent {uuid} (see `orchardist provisioning assign`).")
        return
    table = Table(Column("device", no_wrap=True), "state", "why", title=uuid)
    for row in rows:
        table.add_row(row["udid"], row["state"], row["error"] or "")
    table_console(wide).print(table)


@app.command("remove")
@audited("provisioning.remove", named("uuid"))
def remove(ctx: typer.Context, uuid: str) -> None:
    """Forget a provisioning profile; devices we installed it on get
    RemoveProvisioningProfile (devices whose apps brought it keep it)."""

    async def forget(services: Services) -> Queued:
        return await library_of(services).remove(uuid)

    try:
        done = with_services(ctx, forget)
    except LookupError as exc:
        fail(str(exc), LIST_HINT)
    typer.echo(f"removed {uuid}; {done.removals} device(s) get RemoveProvisioningProfile")


def _row(profile: StoredProvisioningProfile, now: datetime) -> dict[str, Any]:
    from orchardist.apps.provisioning import describe_expiry
    from orchardist.apps.provisioning_expiry import expiry_warning

    warning = expiry_warning(profile, now)
    return {
        "uuid": profile.uuid,
        "name": profile.name,
        "app_id": profile.app_id,
        "team_id": profile.team_id,
        "expires_at": profile.expires_at.isoformat(),
        "expiry": describe_expiry(profile.expires_at, now),
        "warning": None if warning is None else warning.text,
        "replaced_by": profile.replaced_by,
    }


def library_of(services: Services) -> ProvisioningLibrary:
    assert services.provisioning is not None
    return services.provisioning
