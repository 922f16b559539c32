"""Queue a command from the CLI and say what happened, the same way for every command."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import Progress

from orchardist.audit.safe import command_detail
from orchardist.cli.auditing import note
from orchardist.cli.common import data_dir_of, fail, print_json, with_services
from orchardist.pki.store import PkiFiles

if TYPE_CHECKING:
    from orchardist.mdm.dispatch import Queued
    from orchardist.storage.scopes import InGroup
    from orchardist.wiring import Services


def queue_and_report(
    ctx: typer.Context,
    request_type: str,
    params: Mapping[str, Any],
    targets: Sequence[str] | InGroup | None,
    *,
    as_json: bool,
    confirmed: bool = False,
) -> None:
    """Queue for `targets` (a group's enrolled members; None: every enrolled device) and
    print the command's UUID."""
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
    """Queue several commands for the same devices (one push each), list their UUIDs."""
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
    targets: Sequence[str] | InGroup | None,
    *,
    quiet: bool,
    confirmed: bool = False,
) -> tuple[list[Queued], int | None]:
    """Queue each command in turn (one push per device is due: one wake-up runs them all),
    then watch the server push them."""
    from orchardist.mdm.commands import CommandError
    from orchardist.mdm.dispatch import (
        ConfirmationRequiredError,
        UnknownDevicesError,
        UnknownGroupError,
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
    except UnknownGroupError as exc:
        fail(str(exc), "see `orchardist group list`")
    except ConfirmationRequiredError as exc:
        fail(str(exc), "add --yes")
    first = queued[0]
    note().detail.update(_detail(commands, queued))
    return queued, server_pushes(ctx, first.command.command_uuid, first.targets, quiet=quiet)


def _detail(
    commands: Sequence[tuple[str, Mapping[str, Any]]], queued: Sequence[Queued]
) -> dict[str, Any]:
    """The audit entry's: each RequestType with its parameter names, never their values."""
    if len(commands) == 1:
        request_type, params = commands[0]
        uuid = queued[0].command.command_uuid
        return {**command_detail(request_type, params), "command_uuid": uuid,
                "devices": queued[0].targets}  # fmt: skip
    return {"request_types": [name for name, _ in commands],
            "command_uuids": [q.command.command_uuid for q in queued],
            "devices": queued[0].targets}  # fmt: skip


# How long the CLI watches for the server's pushes without seeing one more go out.
STALL_SECONDS = 4.0


def server_pushes(
    ctx: typer.Context, command_uuid: str, targets: int, *, quiet: bool
) -> int | None:
    """How many of the command's targets the running server has pushed, watched (with a
    progress bar) until all are or none more goes out for STALL_SECONDS. The CLI never talks
    to APNs itself: it may lack the server's APNs settings (ORCHARDIST_APNS_URL…) and would
    push to Apple's production service; the server's pusher looks for queued work every
    push_poll_seconds. None when no push certificate has been imported."""
    if not PkiFiles.in_data_dir(data_dir_of(ctx)).has_push():
        return None

    async def watch(services: Services) -> int:
        seen, since = -1, time.monotonic()
        with Progress(transient=True, disable=quiet or targets < 2) as bar:
            task = bar.add_task("the server is pushing", total=targets)
            while True:
                counts = await services.storage.command_counts(command_uuid, datetime.now(UTC))
                pushed = targets - counts["queued"]
                bar.update(task, completed=pushed)
                if counts["queued"] == 0:
                    return pushed
                if pushed != seen:
                    seen, since = pushed, time.monotonic()
                elif time.monotonic() - since > STALL_SECONDS:
                    return pushed
                await asyncio.sleep(0.2)

    return with_services(ctx, watch)


def _pushed_text(pushed: int | None) -> str:
    if pushed is None:
        return "No push certificate yet (`orchardist pushcert csr`): devices are not woken."
    if pushed == 0:
        return (
            "The server pushed none yet: is `orchardist serve` running? It pushes them when "
            "it runs."
        )
    return f"The server pushed {pushed} device(s)."
