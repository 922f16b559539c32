"""`orchardist device …`: see devices and send them the everyday commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchardist.cli.common import fail, print_json, with_services
from orchardist.cli.queueing import queue_and_report
from orchardist.mdm import builders

if TYPE_CHECKING:
    from orchardist.storage import Enrollment
    from orchardist.wiring import Services

app = typer.Typer(help="Enrolled devices: list, show, lock, erase, clear passcode, query.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("list")
def list_devices(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every device that ever enrolled."""

    async def load(services: Services) -> list[dict[str, Any]]:
        return [_row(e) for e in await services.storage.list_enrollments()]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    table = Table("UDID", "serial", "model", "OS", "enrolled", "last seen")
    for row in rows:
        model = row["product_name"] or row["model"] or ""
        enrolled = "yes" if row["enrolled"] else "no"
        cells = (row["serial_number"], model, row["os_version"], enrolled, row["last_seen_at"])
        table.add_row(row["udid"], *(cell or "" for cell in cells))
    Console().print(table if rows else "No devices have enrolled yet.")


@app.command("show")
def show(ctx: typer.Context, udid: str, as_json: JsonOption = False) -> None:
    """One device, with its latest commands."""

    async def load(services: Services) -> dict[str, Any] | None:
        enrollment = await services.storage.get_enrollment(udid)
        if enrollment is None:
            return None
        recent = await services.storage.device_commands(udid, datetime.now(UTC), limit=10)
        commands = [
            {
                "command_uuid": t.command_uuid,
                "request_type": t.request_type,
                "status": t.status.value,
            }
            for t in recent
        ]
        return {**_row(enrollment), "topic": enrollment.facts.topic, "commands": commands}

    found = with_services(ctx, load)
    if found is None:
        fail(f"no device {udid}", "see `orchardist device list`")
    if as_json:
        print_json(found)
        return
    for key, value in found.items():
        if key != "commands":
            typer.echo(f"{key:>16}  {value if value is not None else ''}")
    for command in found["commands"]:
        described = f"{command['request_type']} {command['status']} {command['command_uuid']}"
        typer.echo(f"{'command':>16}  {described}")


@app.command("lock")
def lock(
    ctx: typer.Context,
    udid: str,
    message: Annotated[
        str | None, typer.Option("--message", help="Shown on the Lock screen")
    ] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Shown on the Lock screen")] = None,
    as_json: JsonOption = False,
) -> None:
    """Lock the device now (DeviceLock)."""
    queue_and_report(ctx, *builders.device_lock(message, phone), [udid], as_json=as_json)


@app.command("erase")
def erase(
    ctx: typer.Context,
    udid: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: erasing cannot be undone")] = False,
    pin: Annotated[str | None, typer.Option("--pin", help="macOS Find My PIN (6 digits)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Erase all content and settings (EraseDevice). Needs --yes."""
    if not yes:
        fail("erasing a device cannot be undone", f"run again with --yes to erase {udid}")
    queue_and_report(ctx, *builders.erase_device(pin=pin), [udid], as_json=as_json, confirmed=True)


@app.command("clear-passcode")
def clear_passcode(ctx: typer.Context, udid: str, as_json: JsonOption = False) -> None:
    """Remove the passcode (ClearPasscode), with the UnlockToken the device gave at enrollment."""

    async def token(services: Services) -> bytes | None:
        enrollment = await services.storage.get_enrollment(udid)
        return None if enrollment is None else enrollment.unlock_token

    unlock_token = with_services(ctx, token)
    if unlock_token is None:
        fail(f"no UnlockToken for {udid}", "the device never sent one (or never enrolled)")
    queue_and_report(ctx, *builders.clear_passcode(unlock_token), [udid], as_json=as_json)


@app.command("push")
def push(ctx: typer.Context, udid: str, as_json: JsonOption = False) -> None:
    """Wake a device now through APNs, so that it checks in."""
    from orchardist.cli.queueing import push_now

    async def request(services: Services) -> Enrollment | None:
        enrollment = await services.storage.get_enrollment(udid)
        if enrollment is not None and enrollment.token is not None:
            await services.storage.request_push([udid], datetime.now(UTC))
        return enrollment

    enrollment = with_services(ctx, request)
    if enrollment is None:
        fail(f"no device {udid}", "see `orchardist device list`")
    if enrollment.token is None or not enrollment.enrolled:
        fail(f"{udid} is not enrolled: it has no push token", "enroll it again")
    if enrollment.token_invalid_at is not None:
        fail(
            f"APNs refused {udid}'s push token on {enrollment.token_invalid_at:%Y-%m-%d %H:%M}",
            "the device was probably wiped or unenrolled; it is pushable after its next check-in",
        )
    if push_now(ctx, 1, quiet=True) is None:
        fail("no push certificate yet", "see `orchardist pushcert csr`")

    async def reload(services: Services) -> Enrollment | None:
        return await services.storage.get_enrollment(udid)

    after = with_services(ctx, reload)
    # This device's push, not whatever else was due: its pushed_at moved.
    pushed = (
        after is not None
        and after.pushed_at is not None
        and (enrollment.pushed_at is None or after.pushed_at > enrollment.pushed_at)
    )
    if as_json:
        print_json({"udid": udid, "accepted": pushed})
    elif pushed:
        typer.echo(f"pushed {udid}: APNs accepted it; the device checks in when it is online")
    else:
        fail(f"APNs did not accept the push for {udid}", "see the log, then try again")


@app.command("query")
def query(
    ctx: typer.Context,
    udid: str,
    what: Annotated[str, typer.Argument(help=", ".join(builders.QUERIES))],
    as_json: JsonOption = False,
) -> None:
    """Ask the device for inventory; the answer arrives when it next checks in."""
    if what not in builders.QUERIES:
        fail(f"unknown query {what!r}", f"use one of: {', '.join(builders.QUERIES)}")
    request_type, params = builders.QUERIES[what]
    queue_and_report(ctx, request_type, params, [udid], as_json=as_json)


def _row(enrollment: Enrollment) -> dict[str, Any]:
    facts = enrollment.facts
    return {
        "udid": facts.device_id,
        "serial_number": facts.serial_number,
        "model": facts.model,
        "product_name": facts.product_name,
        "os_version": facts.os_version,
        "enrolled": enrollment.enrolled,
        "last_seen_at": enrollment.last_seen_at.isoformat() if enrollment.last_seen_at else None,
    }
