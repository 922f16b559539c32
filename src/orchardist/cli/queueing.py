"""Queue a command from the CLI and say what happened, the same way for every command."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import Progress

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
    pushed = push_now(ctx, queued.targets, quiet=as_json)
    result = {
        "command_uuid": queued.command.command_uuid,
        "targets": queued.targets,
        "pushed": pushed,
    }
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"{request_type} queued for {queued.targets} device(s): {queued.command.command_uuid}\n"
            f"{_pushed_text(pushed)} It runs when each device checks in; "
            "see `orchardist command show UUID`."
        )


def push_now(ctx: typer.Context, expected: int, *, quiet: bool) -> int | None:
    """Push what is due now from this process, with a progress bar (a running server would
    do the same within a second; pushing here makes the CLI's answer final). None when no
    push certificate has been imported."""

    async def push(services: Services) -> int | None:
        assert services.pusher is not None
        assert services.senders is not None
        if await services.senders.current() is None:
            return None
        with Progress(transient=True, disable=quiet or expected < 2) as bar:
            task = bar.add_task("pushing", total=expected)
            services.pusher.on_batch = lambda claimed: bar.advance(task, claimed)
            await services.pusher.drain()
        return services.pusher.pushed

    return with_services(ctx, push)


def _pushed_text(pushed: int | None) -> str:
    if pushed is None:
        return "No push certificate yet (`orchardist pushcert csr`): devices are not woken."
    return f"{pushed} push(es) accepted by APNs."
