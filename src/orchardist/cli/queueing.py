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
    (queued,), pushed = _queue(ctx, [(request_type, params)], targets, quiet=as_json,
                               confirmed=confirmed)  # fmt: skip
    uuid = queued.command.command_uuid
    if as_json:
        print_json({"command_uuid": uuid, "targets": queued.targets, "pushed": pushed})
    else:
        typer.echo(
            f"{request_type} queued for {queued.targets} device(s): {uuid}\n"
            f"{_pushed_text(pushed)} It runs when each device checks in; "
            "see `orchardist command show UUID`."
        )


def queue_several_and_report(
    ctx: typer.Context,
    commands: Sequence[tuple[str, Mapping[str, Any]]],
    targets: Sequence[str] | None,
    *,
    as_json: bool,
) -> None:
    """Queue several commands for the same devices, push once, list their UUIDs."""
    queued, pushed = _queue(ctx, commands, targets, quiet=as_json)
    rows = [{"request_type": q.command.request_type, "command_uuid": q.command.command_uuid}
            for q in queued]  # fmt: skip
    if as_json:
        print_json({"commands": rows, "targets": queued[0].targets, "pushed": pushed})
        return
    for row in rows:
        typer.echo(f"{row['request_type']} queued: {row['command_uuid']}")
    typer.echo(
        f"for {queued[0].targets} device(s). {_pushed_text(pushed)} They run when each "
        "device checks in; see `orchardist command show UUID`."
    )


def _queue(
    ctx: typer.Context,
    commands: Sequence[tuple[str, Mapping[str, Any]]],
    targets: Sequence[str] | None,
    *,
    quiet: bool,
    confirmed: bool = False,
) -> tuple[list[Queued], int | None]:
    """Queue each command in turn, then push once (one wake-up runs them all)."""
    from orchardist.mdm.commands import CommandError
    from orchardist.mdm.dispatch import (
        ConfirmationRequiredError,
        UnknownDevicesError,
        queue_command,
    )

    async def send(services: Services) -> list[Queued]:
        return [
            await queue_command(
                services.storage, request_type, params, targets,
                now=datetime.now(UTC), confirmed=confirmed,
            )
            for request_type, params in commands
        ]  # fmt: skip

    names = ", ".join(request_type for request_type, _ in commands)
    try:
        with Console(stderr=True).status(f"Queueing {names}…"):
            queued = with_services(ctx, send)
    except CommandError as exc:
        if exc.key == "request_type":
            fail(exc.problems[0].message, "see `orchardist command types`")
        fail(f"{names}: {exc}", "the parameters must match Apple's schema for it")
    except UnknownDevicesError as exc:
        fail(str(exc), "see `orchardist device list`")
    except ConfirmationRequiredError as exc:
        fail(str(exc), "add --yes")
    return queued, push_now(ctx, queued[0].targets, quiet=quiet)


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
