"""Queue a command from the CLI and say what happened, the same way for every command."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from orchardist.cli.common import fail, print_json, with_services

if TYPE_CHECKING:
    from orchardist.mdm.dispatch import Queued
    from orchardist.wiring import Services


def queue_and_report(
    ctx: typer.Context,
    request_type: str,
    params: Mapping[str, Any],
    targets: Sequence[str] | None,
    *,
    as_json: bool,
    confirmed: bool = False,
) -> None:
    """Queue for `targets` (None: every enrolled device) and print the command's UUID."""
    from orchardist.mdm.commands import CommandError
    from orchardist.mdm.dispatch import (
        ConfirmationRequiredError,
        UnknownDevicesError,
        queue_command,
    )

    async def send(services: Services) -> Queued:
        return await queue_command(
            services.storage, request_type, params, targets,
            now=datetime.now(UTC), confirmed=confirmed,
        )  # fmt: skip

    try:
        with Console(stderr=True).status(f"Queueing {request_type}…"):
            queued = with_services(ctx, send)
    except CommandError as exc:
        fail(f"{request_type}: {exc}", "the parameters must match Apple's schema for it")
    except UnknownDevicesError as exc:
        fail(str(exc), "see `orchardist device list`")
    except ConfirmationRequiredError as exc:
        fail(str(exc), "add --yes")
    result = {"command_uuid": queued.command.command_uuid, "targets": queued.targets}
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"{request_type} queued for {queued.targets} device(s): {queued.command.command_uuid}\n"
            "It runs when each device next checks in; see `orchardist command show UUID`."
        )
