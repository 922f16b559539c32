"""`orchardist command …`: any RequestType in Apple's schema, and its results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from orchardist.cli.auditing import audited
from orchardist.cli.common import WideOption, fail, print_json, table_console, with_services
from orchardist.cli.queueing import queue_and_report
from orchardist.mdm import builders

if TYPE_CHECKING:
    from orchardist.storage import TargetState
    from orchardist.wiring import Services

app = typer.Typer(help="Send any MDM command; follow its results.")


@app.command("send")
@audited(
    "command.queue",
    lambda args: (
        ["all"] if args["send_all"]
        else [f"group:{args['group']}"] if args["group"] else args["target"] or [],
        {},
    ),
)  # fmt: skip
def send(
    ctx: typer.Context,
    request_type: str,
    params: Annotated[
        list[str] | None, typer.Argument(help="key=value (JSON values allowed)")
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="A device UDID (repeat)")
    ] = None,
    send_all: Annotated[bool, typer.Option("--all", help="Every enrolled device")] = False,
    group: Annotated[
        str | None, typer.Option("--group", help="The enrolled members of a static group")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm a destructive command")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Queue REQUESTTYPE, e.g. `command send DeviceLock --all Message="Call IT"` (see
    `command types`); --all and --group are resolved in the database, however many.
    DeviceInformation without Queries asks for the usual list."""
    from orchardist.schema.jsonvalues import from_json
    from orchardist.schema.validate import mdm_schema
    from orchardist.storage.scopes import InGroup

    if [bool(target), send_all, group is not None].count(True) != 1:
        fail("say which devices", "use --target UDID (one or more), --group NAME or --all")
    values = dict(_pair(item) for item in params or [])
    values = builders.with_defaults(request_type, values)
    values = from_json(values, mdm_schema().commands.get(request_type, ()))
    targets = None if send_all else InGroup(group) if group is not None else list(target or [])
    queue_and_report(ctx, request_type, values, targets, as_json=as_json, confirmed=yes)


@app.command("types")
def types(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Every RequestType in Apple's schema, with its parameters (required ones first)."""
    from orchardist.schema.validate import mdm_schema

    schema = mdm_schema()
    commands = sorted(schema.commands.items())
    if as_json:
        print_json([{"request_type": name,
                     "required": [k.key for k in keys if k.required],
                     "optional": [k.key for k in keys if not k.required]}
                    for name, keys in commands])  # fmt: skip
        return
    table = Table(Column("RequestType", no_wrap=True),
                  Column("parameters (* required)", overflow="fold"),
                  title=f"{len(commands)} commands",
                  caption=f"Apple's schema, {schema.source}")  # fmt: skip
    for name, keys in commands:
        ordered = sorted(keys, key=lambda k: not k.required)
        table.add_row(name, ", ".join(f"{k.key}{'*' if k.required else ''}" for k in ordered))
    Console().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    command_uuid: str,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Devices to list (the counts cover all)")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    wide: WideOption = False,
) -> None:
    """Per-device status and result of a command."""

    async def load(services: Services) -> tuple[list[TargetState], dict[str, int]]:
        now = datetime.now(UTC)
        targets = await services.storage.command_targets(command_uuid, now, limit=limit)
        return targets, await services.storage.command_counts(command_uuid, now)

    targets, counts = with_services(ctx, load)
    if not targets:
        fail(f"no command {command_uuid}")
    shown_all = sum(counts.values()) <= len(targets)
    rows = [_describe(t) for t in targets]
    if as_json:
        print_json(
            {
                "command_uuid": command_uuid,
                "request_type": targets[0].request_type,
                "counts": counts,
                "targets": rows,
            }
        )
        return
    typer.echo(", ".join(f"{count} {state}" for state, count in counts.items() if count))
    if not shown_all:
        typer.echo(f"(the first {len(targets)} devices; --limit shows more)")
    table = Table(Column("device", no_wrap=True), "status", "answered",
                  title=f"{targets[0].request_type} {command_uuid}")  # fmt: skip
    for row in rows:
        table.add_row(row["udid"], row["status"], row["answered_at"] or "")
    table_console(wide).print(table)


def _pair(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        fail(f"{item!r} is not key=value")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw  # a bare word is a string


def _describe(target: TargetState) -> dict[str, Any]:
    from orchardist.mdm.reports import result_as_json

    result = None if target.result is None else result_as_json(target.result)
    return {
        "udid": target.device_id,
        "status": target.status.value,
        "answered_at": target.answered_at.isoformat() if target.answered_at else None,
        "result": result,
    }
