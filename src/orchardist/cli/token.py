"""`orchardist token …`: API tokens for /api/v1 (create, list, revoke)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from orchardist.cli.auditing import audited
from orchardist.cli.common import WideOption, fail, print_json, table_console, with_services
from orchardist.tokens import create_api_token

if TYPE_CHECKING:
    from orchardist.storage import ApiToken
    from orchardist.wiring import Services

app = typer.Typer(help="API tokens for /api/v1: each has a role and, if given, an expiry.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("create")
@audited("token.create", lambda args: ([args["name"]], {"role": args["role"]}))
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name saying who uses the token")],
    role: Annotated[str, typer.Option("--role", help="admin, operator or viewer")] = "admin",
    expires_days: Annotated[
        int | None,
        typer.Option("--expires-days", min=1, help="Refused after this many days (default: never)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API token and print it once: it is stored hashed and cannot be shown again.
    What each role may do: docs/console.md, "Who may do what"."""
    if role not in {"admin", "operator", "viewer"}:
        fail(f"unknown role {role!r}", "use admin, operator or viewer")
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None

    async def make(services: Services) -> str:
        return await create_api_token(services.storage, name, role, expires_at=expires)

    try:
        value = with_services(ctx, make)
    except ValueError:
        fail(f"a token named {name!r} exists already", "choose another --name")
    if as_json:
        print_json({"name": name, "role": role, "expires_at": expires, "token": value})
    else:
        typer.echo(value)


@app.command("list")
def list_tokens(ctx: typer.Context, as_json: JsonOption = False, wide: WideOption = False) -> None:
    """Every token: name, role, when it was made and expires, and whether it still works
    (never the token itself)."""

    async def load(services: Services) -> list[ApiToken]:
        return await services.storage.list_api_tokens()

    now = datetime.now(UTC)
    rows = [_row(token, now) for token in with_services(ctx, load)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "created", "expires", "state")
    for row in rows:
        expires = _day(row["expires_at"]) if row["expires_at"] else "never"
        table.add_row(row["name"], row["role"], _day(row["created_at"]), expires, row["state"])
    table_console(wide).print(table if rows else "No API tokens yet: `orchardist token create`.")


@app.command("revoke")
@audited("token.revoke", lambda args: ([args["name"]], {}))
def revoke(ctx: typer.Context, name: str) -> None:
    """Revoke a token now: requests with it get 401 from then on. It stays listed."""

    async def work(services: Services) -> bool:
        return await services.storage.revoke_api_token(name, datetime.now(UTC))

    if not with_services(ctx, work):
        fail(f"no token named {name!r}", "see `orchardist token list`")
    typer.echo(f"revoked {name}")


def _row(token: ApiToken, now: datetime) -> dict[str, Any]:
    fields = ("name", "role", "created_at", "expires_at", "revoked_at")
    return {**{key: getattr(token, key) for key in fields}, "state": token.state(now)}


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")
