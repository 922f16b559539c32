"""`orchardist device …`: see devices and send them the everyday commands."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchardist.cli.auditing import audited, named
from orchardist.cli.common import (
    WideOption,
    data_dir_of,
    fail,
    print_json,
    table_console,
    with_services,
)
from orchardist.cli.queueing import queue_and_report, queue_several_and_report
from orchardist.mdm import builders
from orchardist.pki.store import PkiFiles

if TYPE_CHECKING:
    from orchardist.storage import Enrollment
    from orchardist.wiring import Services

app = typer.Typer(help="Enrolled devices: list, show, lock, erase, clear passcode, query.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("list")
def list_devices(
    ctx: typer.Context,
    as_json: JsonOption = False,
    wide: WideOption = False,
    non_compliant: Annotated[
        bool,
        typer.Option("--non-compliant", help="Only devices breaking a compliance rule, and why"),
    ] = False,
) -> None:
    """Every device that ever enrolled, with its compliance (docs/compliance.md)."""
    from orchardist.cli.device_view import device_table
    from orchardist.mdm.device_list import every_device
    from orchardist.mdm.summary import device_fields
    from orchardist.storage.compliance import ComplianceStatus
    from orchardist.storage.listing import DeviceFilters

    status = ComplianceStatus.NON_COMPLIANT if non_compliant else None

    async def load(services: Services) -> list[dict[str, Any]]:
        found = every_device(services.storage, DeviceFilters(compliance=status))
        return [device_fields(d.enrollment, d.compliance) async for d in found]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    empty = (
        "No device breaks a compliance rule." if non_compliant else "No devices have enrolled yet."
    )
    table = device_table(rows, reasons=non_compliant)
    table_console(wide).print(table if rows else empty)


@app.command("show")
def show(ctx: typer.Context, udid: str, as_json: JsonOption = False) -> None:
    """One device: what it is, its compliance and why, what its inventory says (battery,
    storage, passcode, encryption, apps, certificates expiring within 30 days), its latest
    commands."""
    from orchardist.cli import device_view
    from orchardist.mdm.summary import DeviceSummary, device_fields, summarize

    now = datetime.now(UTC)

    async def load(services: Services) -> tuple[dict[str, Any], DeviceSummary | None] | None:
        enrollment = await services.storage.get_enrollment(udid)
        if enrollment is None:
            return None
        inventory = await services.storage.get_inventory(udid)
        recent = await services.storage.device_commands(udid, now, limit=10)
        commands = [
            {
                "command_uuid": t.command_uuid,
                "request_type": t.request_type,
                "status": t.status.value,
            }
            for t in recent
        ]
        verdict = await services.storage.get_compliance(udid)
        device = {**device_fields(enrollment, verdict), "topic": enrollment.facts.topic,
                  "pushed_at": enrollment.pushed_at,
                  "push_token_invalid_at": enrollment.token_invalid_at,
                  "commands": commands}  # fmt: skip
        return device, None if inventory is None else summarize(inventory, now)

    found = with_services(ctx, load)
    if found is None:
        fail(f"no device {udid}", "see `orchardist device list`")
    device, summary = found
    if as_json:
        print_json({**device, "summary": summary})
        return
    table_console(False).print(device_view.render(device, summary, now))


@app.command("lock")
@audited("command.queue", named("udid"))
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
@audited("command.queue", named("udid"))
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


@app.command("retire")
@audited("device.retire", lambda args: ([args["udid"]], {"forget": args["forget"]}))
def retire(
    ctx: typer.Context,
    udid: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the device leaves management")
    ] = False,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget",
            help="The device is gone: end its enrollment now and revoke its certificate",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Take a device out of management: it removes its enrollment profile at its next
    check-in (RemoveProfile), and its CheckOut ends the enrollment. With --forget, for a
    device that is gone or must re-enroll with a new certificate: the enrollment ends now,
    what is queued is cancelled and its certificate revoked. Needs --yes."""
    if not yes:
        fail(
            f"retiring {udid} takes it out of management"
            + (" and revokes its identity certificate" if forget else ""),
            f"run again with --yes to retire {udid}",
        )
    from orchardist.mdm.retirement import Retired
    from orchardist.mdm.retirement import retire as retire_device

    async def work(services: Services) -> Retired | None:
        assert services.enrollment is not None
        return await retire_device(
            services.storage, services.storage, udid, forget=forget,
            profile_identifier=services.enrollment.identifier, now=datetime.now(UTC),
        )  # fmt: skip

    retired = with_services(ctx, work)
    if retired is None:
        fail(f"no device {udid}", "see `orchardist device list`")
    state = retired.enrollment.state
    if not forget and retired.command_uuid is None:
        fail(f"{udid} is not enrolled any more ({state})", "use --forget to revoke its certificate")
    if as_json:
        print_json({"udid": udid, "state": state, "command_uuid": retired.command_uuid})
    elif forget:
        typer.echo(f"retired {udid}: its certificate is revoked; it may enroll again afresh")
    else:
        typer.echo(
            f"RemoveProfile queued for {udid} ({retired.command_uuid}): it leaves management "
            "at its next check-in. If it never comes back: --forget"
        )


@app.command("clear-passcode")
@audited("command.queue", named("udid"))
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
@audited("device.push", named("udid"))
def push(ctx: typer.Context, udid: str, as_json: JsonOption = False) -> None:
    """Wake a device now through APNs, so that it checks in (the running server pushes)."""
    from orchardist.cli.queueing import STALL_SECONDS

    async def request(services: Services) -> Enrollment | None:
        enrollment = await services.storage.get_enrollment(udid)
        if enrollment is not None and enrollment.token is not None:
            await services.storage.request_push([udid], datetime.now(UTC))
        return enrollment

    if not PkiFiles.in_data_dir(data_dir_of(ctx)).has_push():
        fail("no push certificate yet", "see `orchardist pushcert csr`")
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

    async def watch(services: Services) -> bool:
        """This device's push, not whatever else was due: its pushed_at moved."""
        deadline = time.monotonic() + STALL_SECONDS
        while time.monotonic() < deadline:
            after = await services.storage.get_enrollment(udid)
            pushed_at = after.pushed_at if after is not None else None
            if pushed_at is not None and (
                enrollment.pushed_at is None or pushed_at > enrollment.pushed_at
            ):
                return True
            await asyncio.sleep(0.2)
        return False

    pushed = with_services(ctx, watch)
    if as_json:
        print_json({"udid": udid, "accepted": pushed})
    elif pushed:
        typer.echo(f"pushed {udid}: APNs accepted it; the device checks in when it is online")
    else:
        fail(
            f"the server did not push {udid} within {STALL_SECONDS:.0f} s",
            "is `orchardist serve` running? It pushes it when it runs; its log says why APNs "
            "refused one",
        )


_WHAT_HELP = (
    f"One of {', '.join(builders.QUERIES)}; default: the inventory "
    f"({', '.join(builders.INVENTORY)})"
)


@app.command("query")
@audited("command.queue", lambda args: (["all"] if args["send_all"] else [args["udid"]], {}))
def query(
    ctx: typer.Context,
    udid: Annotated[str | None, typer.Argument(help="The device (or, with --all, WHAT)")] = None,
    what: Annotated[str | None, typer.Argument(help=_WHAT_HELP)] = None,
    send_all: Annotated[bool, typer.Option("--all", help="Every enrolled device")] = False,
    as_json: JsonOption = False,
) -> None:
    """Ask for inventory (`device query UDID [WHAT]`, `device query --all [WHAT]`); the
    answers arrive when each device checks in, and `device show` summarises them."""
    if send_all:
        if what is not None:
            fail("--all asks every device: give no UDID", "e.g. `orchardist device query --all`")
        udid, what = None, udid
    elif udid is None:
        fail("say which devices", "give a UDID, or --all")
    names = builders.INVENTORY if what is None else (what,)
    unknown = [name for name in names if name not in builders.QUERIES]
    if unknown:
        fail(f"unknown query {unknown[0]!r}", f"use one of: {', '.join(builders.QUERIES)}")
    targets = None if udid is None else [udid]
    if what is None:
        commands = [builders.QUERIES[name] for name in names]
        queue_several_and_report(ctx, commands, targets, as_json=as_json)
    else:
        queue_and_report(ctx, *builders.QUERIES[what], targets, as_json=as_json)
