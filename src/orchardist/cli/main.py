"""`orchardist`: the entry point and the commands every install starts with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchardist.cli import (
    ca,
    command,
    device,
    directory,
    enrollment,
    group,
    init,
    profile,
    pushcert,
    scep,
    serve,
    simulate,
    token,
)
from orchardist.config import resolve_data_dir
from orchardist.logs import configure_logging

app = typer.Typer(
    name="orchardist",
    help="Self-hosted Apple MDM server: SCEP CA, device management, app catalog.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init)
app.command("serve")(serve.serve)
app.command("enrollment-profile")(enrollment.enrollment_profile)
app.command("simulate")(simulate.simulate)
app.add_typer(enrollment.enroll_app, name="enroll")
app.add_typer(pushcert.app, name="pushcert")
app.add_typer(ca.app, name="ca")
app.add_typer(scep.app, name="scep")
app.add_typer(token.app, name="token")
app.add_typer(device.app, name="device")
app.add_typer(command.app, name="command")
app.add_typer(directory.app, name="directory")
app.add_typer(profile.app, name="profile")
app.add_typer(group.app, name="group")


@app.callback()
def main_options(
    ctx: typer.Context,
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
    app()
