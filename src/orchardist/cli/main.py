"""`orchardist`: the entry point and the commands every install starts with."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, MutableMapping
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

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
    # The top-level group alone; each command and group under it is built when looked up
    # (typer reads every parameter's annotations to build one: ~40 ms for all of them).
    command = typer.main.get_command(_without_commands(app))
    _literal_help(command)
    assert isinstance(command, TyperGroup)
    command.commands = _CommandsOnDemand(app)
    command(prog_name="orchardist")


def _without_commands(typer_app: typer.Typer) -> typer.Typer:
    bare = copy.copy(typer_app)
    bare.registered_commands, bare.registered_groups = [], []
    return bare


class _CommandsOnDemand(MutableMapping[str, Any]):
    """A typer app's commands and groups as its group's `commands`, in typer's order
    (commands, then groups), each built by typer's own builders, with its help escaped,
    the first time it is looked up: `orchardist device list` builds `device` only, the
    top-level --help (which lists all) builds all, as typer.main.get_command would."""

    def __init__(self, typer_app: typer.Typer) -> None:
        self._built: dict[str, Any] = {}
        shown: dict[str, Any] = {
            "pretty_exceptions_short": typer_app.pretty_exceptions_short,
            "rich_markup_mode": typer_app.rich_markup_mode,
        }
        self._builders: dict[str, Callable[[], Any]] = {
            _command_name(info): functools.partial(typer.main.get_command_from_info, info, **shown)
            for info in typer_app.registered_commands
        }
        for group_info in typer_app.registered_groups:
            self._builders[_group_name(group_info)] = functools.partial(
                typer.main.get_group_from_info,
                group_info,
                suggest_commands=typer_app.suggest_commands,
                **shown,
            )

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            command = self._builders[name]()  # KeyError: no such command
            _literal_help(command)
            self._built[name] = command
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._builders[name] = lambda: command
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._builders[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def _command_name(info: CommandInfo) -> str:
    if info.name:
        return info.name
    assert info.callback is not None
    return typer.main.get_command_name(info.callback.__name__)


def _group_name(info: TyperInfo) -> str:
    # Every group here is added with a name (typer would otherwise merge its commands
    # into this group's).
    assert isinstance(info.name, str), "add_typer(..., name=...) for every group"
    return info.name


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
