"""`orchardist`: the entry point and the commands every install starts with."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.markup import escape

from orchardist.cli import (
    admin,
    app_catalog,
    audit,
    backup,
    ca,
    command,
    device,
    directory,
    enrollment,
    group,
    init,
    keys,
    profile,
    provisioning,
    pushcert,
    scep,
    serve,
    simulate,
    token,
)
from orchardist.cli import app as app_cli
from orchardist.config import resolve_data_dir
from orchardist.logs import configure_logging

app = typer.Typer(
    name="orchardist",
    help="Self-hosted Apple MDM server: SCEP CA, enrollment, commands, profiles, APNs push.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init)
app.command("serve")(serve.serve)
app.command("enrollment-profile")(enrollment.enrollment_profile)
app.add_typer(simulate.app, name="simulate")
app.add_typer(enrollment.enroll_app, name="enroll")
app.add_typer(pushcert.app, name="pushcert")
app.add_typer(ca.app, name="ca")
app.add_typer(scep.app, name="scep")
app.add_typer(token.app, name="token")
app.command("audit")(audit.audit)
app.add_typer(admin.app, name="admin")
app.add_typer(device.app, name="device")
app.add_typer(command.app, name="command")
app.add_typer(directory.app, name="directory")
app.add_typer(profile.app, name="profile")
app_cli.app.command("catalog")(app_catalog.catalog)
app_cli.app.command("catalog-clip")(app_catalog.catalog_clip)
app.add_typer(app_cli.app, name="app")
app.add_typer(provisioning.app, name="provisioning")
app.add_typer(group.app, name="group")
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(keys.app, name="keys")


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"orchardist {version('orchardist')}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data folder (config, database, keys). Default: $ORCHARDIST_DATA_DIR or "
            "./orchardist-data",
        ),
    ] = None,
) -> None:
    ctx.obj = resolve_data_dir(data_dir)
    # Warnings and errors on stderr, as JSON lines; stdout stays for the command's answer
    # (`serve` sets its own level from the settings).
    configure_logging("warning")


def main() -> None:
    command = typer.main.get_command(app)
    _literal_help(command)
    command(prog_name="orchardist")


def _literal_help(command: Any) -> None:
    """Our help texts are plain text, but typer shows them through rich, which reads
    `[smtp]` as a style tag and drops it: every bracket is escaped once, here, so no help
    text has to know. `command` is typer's (vendored) click Command."""
    for attr in ("help", "short_help", "epilog"):
        if getattr(command, attr, None):
            setattr(command, attr, escape(getattr(command, attr)))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
    for sub in getattr(command, "commands", {}).values():
        _literal_help(sub)
