"""`orchardist admin …`: local console accounts (directory users need none: see the
`[console]` groups in docs/console.md)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from orchardist.cli.auditing import audited, named
from orchardist.cli.common import WideOption, fail, print_json, table_console, with_services

if TYPE_CHECKING:
    from orchardist.wiring import Services

T = TypeVar("T")
app = typer.Typer(help="Console accounts: create, list, disable, enable, passwd.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (scripts); without "
        "it the password is asked twice in the terminal",
    ),
]


@app.command("create")
@audited("account.create", lambda args: ([args["name"]], {"role": args["role"]}))
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, . _ @ -")],
    role: Annotated[str, typer.Option("--role", help="admin, operator or viewer")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console account; it signs in at /console/login. What each role may do:
    docs/console.md, "Who may do what"."""
    password = _password(password_stdin)
    _run(ctx, lambda services: services.accounts.create(name, role, password))
    typer.echo(f"created {name} ({role})")


@app.command("list")
def list_accounts(
    ctx: typer.Context, as_json: JsonOption = False, wide: WideOption = False
) -> None:
    """Every local account, its role and whether it is disabled (never a password)."""

    async def load(services: Services) -> list[dict[str, object]]:
        return [
            {"name": a.name, "role": a.role, "created_at": a.created_at,
             "password_changed_at": a.password_changed_at, "disabled_at": a.disabled_at}
            for a in await services.accounts.list_accounts()
        ]  # fmt: skip

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "created", "state")
    for row in rows:
        state = "disabled" if row["disabled_at"] else "active"
        created = f"{row['created_at']:%Y-%m-%d %H:%M}"
        table.add_row(str(row["name"]), str(row["role"]), created, state)
    empty = "No accounts yet: `orchardist admin create NAME --role admin`."
    table_console(wide).print(table if rows else empty)


@app.command("disable")
@audited("account.disable", named("name"))
def disable(ctx: typer.Context, name: str) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    _run(ctx, lambda services: services.accounts.disable(name))
    typer.echo(f"disabled {name}")


@app.command("enable")
@audited("account.enable", named("name"))
def enable(ctx: typer.Context, name: str) -> None:
    """Enable a disabled account again: it signs in with the password it had."""
    _run(ctx, lambda services: services.accounts.enable(name))
    typer.echo(f"enabled {name}")


@app.command("passwd")
@audited("account.passwd", named("name"))
def passwd(ctx: typer.Context, name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; the account's open sessions end."""
    password = _password(password_stdin)
    _run(ctx, lambda services: services.accounts.set_password(name, password))
    typer.echo(f"password changed for {name}")


def _run(ctx: typer.Context, work: Callable[[Services], Awaitable[T]]) -> T:
    from orchardist.accounts.service import AccountError

    try:
        return with_services(ctx, work)
    except AccountError as exc:
        fail(str(exc))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        fail(
            "no password given",
            "write it to standard input with --password-stdin, or run this in a terminal",
        )
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password
