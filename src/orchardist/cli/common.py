"""Helpers shared by the commands: settings for the chosen data dir, errors for humans."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from orchardist.cli.auditing import failed
from orchardist.config import CONFIG_FILE_NAME, Settings, load_settings
from orchardist.config_check import SettingsError

if TYPE_CHECKING:
    from orchardist.pki.store import PkiFiles
    from orchardist.wiring import Services

T = TypeVar("T")
err_console = Console(stderr=True, soft_wrap=True)
WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Never shorten a cell to fit the terminal (a pipe gets all)"),
]


def fail(message: str, hint: str | None = None) -> NoReturn:
    failed(message)  # the audit entry's reason, when the command is audited
    err_console.print(f"[bold red]error:[/] {message}")
    if hint:
        err_console.print(f"[dim]→ {hint}[/]")
    raise typer.Exit(1)


def data_dir_of(ctx: typer.Context) -> Path:
    data_dir: Path = ctx.obj
    return data_dir


def settings_of(ctx: typer.Context) -> Settings:
    data_dir = data_dir_of(ctx)
    if not (data_dir / CONFIG_FILE_NAME).exists():
        fail(
            f"{data_dir} is not an Orchardist data folder",
            f"run `orchardist --data-dir {data_dir} init --hostname HOST` first",
        )
    return load_or_fail(data_dir)


def pki_files_of(settings: Settings) -> PkiFiles:
    """The data dir's key files, opened (and written) with the master key, which is made
    when there is none yet, as a server start would."""
    from orchardist.keys.master import MasterKeyError
    from orchardist.keys.sources import key_source
    from orchardist.pki.store import PkiFiles

    source = key_source(settings)
    try:
        keys = source.load(create=True)
    except MasterKeyError as exc:
        fail(escape(str(exc)), f"check {source.describe()} (see docs/keys.md)")
    return PkiFiles.in_data_dir(settings.data_dir, keys)


def load_or_fail(data_dir: Path, **overrides: Any) -> Settings:
    """The data dir's settings; a bad one ends the command with its one-line reason."""
    try:
        return load_settings(data_dir, **overrides)
    except SettingsError as exc:
        fail(
            escape(str(exc)),
            f"fix {data_dir / CONFIG_FILE_NAME} or the ORCHARDIST_* environment variable; "
            "every setting is in docs/configuration.md",
        )


def with_services(ctx: typer.Context, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run `work` with the services open, closing them afterwards."""
    # Imported here: the database and web stacks take a second to import, and commands
    # such as `ca export` or `--help` should not pay for it.
    from orchardist.wiring import open_services

    settings = settings_of(ctx)

    async def run() -> T:
        services = await open_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(run())


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def table_console(wide: bool) -> Console:
    """Where tables go. In a terminal, rich fits a table to its width, shortening cells
    (UDID columns are no_wrap: other cells give way first); piped (a script reads the
    UDIDs) or with --wide, nothing is cut."""
    console = Console()
    if wide or not console.is_terminal:
        # Wide enough for any row; rich draws a table no wider than its content.
        return Console(width=100_000)
    return console
