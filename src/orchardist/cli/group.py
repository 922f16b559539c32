"""`orchardist group …`: static device groups, to assign profiles to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orchardist.cli.auditing import audited
from orchardist.cli.common import fail, print_json, with_services
from orchardist.cli.profile import JsonOption, library_of

if TYPE_CHECKING:
    from orchardist.profiles.library import Reconciled
    from orchardist.wiring import Services

app = typer.Typer(help="Static device groups, to assign profiles to.")


@app.command("set")
@audited("group.set", lambda args: ([f"group:{args['name']}", *args["devices"]], {}))
def set_group(
    ctx: typer.Context,
    name: str,
    devices: Annotated[list[str], typer.Argument(help="The group's UDIDs (replacing any)")],
) -> None:
    """Create or replace a group; profiles assigned to it follow its members."""

    async def change(services: Services) -> Reconciled:
        return await library_of(services).set_group(name, devices)

    try:
        with_services(ctx, change)
    except LookupError as exc:
        fail(str(exc), "see `orchardist device list`")
    typer.echo(f"group {name}: {len(set(devices))} device(s)")


@app.command("list")
def list_groups(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every group and its members."""

    async def load(services: Services) -> dict[str, list[str]]:
        return dict(await services.storage.groups())

    groups = with_services(ctx, load)
    if as_json:
        print_json(groups)
        return
    for name, members in groups.items():
        typer.echo(f"{name}: {', '.join(members)}")
