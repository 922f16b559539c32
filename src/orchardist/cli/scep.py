"""`orchardist scep …`: challenge passwords for enrolment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orchardist.cli.common import print_json, with_services

if TYPE_CHECKING:
    from orchardist.wiring import Services

app = typer.Typer(help="The SCEP service at /scep.")


@app.command("challenge")
def challenge(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print a fresh one-time challenge password (valid one hour by default)."""

    async def issue(services: Services) -> tuple[str, str]:
        value, expires_at = await services.challenges.issue()
        return value, expires_at.isoformat()

    value, expires_at = with_services(ctx, issue)
    if as_json:
        print_json({"challenge": value, "expires_at": expires_at})
    else:
        typer.echo(value)
