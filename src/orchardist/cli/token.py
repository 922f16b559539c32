"""`orchardist token …`: API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orchardist.cli.common import fail, print_json, with_services
from orchardist.tokens import create_api_token

if TYPE_CHECKING:
    from orchardist.wiring import Services

app = typer.Typer(help="API tokens for /api/v1.")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name saying who uses the token")],
    role: Annotated[str, typer.Option("--role", help="admin, operator or viewer")] = "admin",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create an API token and print it once: it is stored hashed and cannot be shown again."""
    if role not in {"admin", "operator", "viewer"}:
        fail(f"unknown role {role!r}", "use admin, operator or viewer")

    async def make(services: Services) -> str:
        return await create_api_token(services.storage, name, role)

    try:
        value = with_services(ctx, make)
    except ValueError:
        fail(f"a token named {name!r} exists already", "choose another --name")
    if as_json:
        print_json({"name": name, "role": role, "token": value})
    else:
        typer.echo(value)
