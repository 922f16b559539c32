"""`orchardist directory test USER`: check the directory settings from the command line."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from orchardist.cli.common import fail, print_json, settings_of

app = typer.Typer(help="The LDAP / Active Directory server users sign in with to enroll.")


@app.command("test")
def check_login(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="A user name as people type it (uid, e-mail, UPN)")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Sign in as USER the way the enrollment page does, and show what the directory says:
    the user's entry and groups, or exactly why not."""
    from orchardist.enroll.directory import Directory, DirectoryError, config_from

    settings = settings_of(ctx)
    if settings.directory is None:
        fail(
            "no directory configured",
            "add a [directory] table to orchardist.toml (docs/enrollment.md)",
        )
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(f"password for {user}", hide_input=True)
    try:
        found = asyncio.run(Directory(config_from(settings.directory)).authenticate(user, password))
    except DirectoryError as exc:
        fail(f"{user}: {exc}")
    described = {
        "dn": found.dn,
        "name": found.display_name,
        "email": found.email,
        "groups": list(found.groups),
    }
    if as_json:
        print_json(described)
        return
    for key, value in described.items():
        typer.echo(f"{key:>7}  {', '.join(value) if isinstance(value, list) else value or ''}")
