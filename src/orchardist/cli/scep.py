"""`orchardist scep …`: challenge passwords for enrolment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchardist.cli.auditing import audited, named, note
from orchardist.cli.common import fail, print_json, with_services

if TYPE_CHECKING:
    from orchardist.wiring import Services

app = typer.Typer(help="The SCEP service at /scep.")


@app.command("challenge")
@audited("scep.challenge")
def challenge(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print a fresh one-time challenge password (valid one hour by default)."""

    async def issue(services: Services) -> tuple[str, str]:
        value, expires_at = await services.challenges.issue()
        return value, expires_at.isoformat()

    value, expires_at = with_services(ctx, issue)
    note().detail["expires_at"] = expires_at  # never the challenge: it enrolls a device
    if as_json:
        print_json({"challenge": value, "expires_at": expires_at})
    else:
        typer.echo(value)


@app.command("pending")
def pending(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List requests waiting for approval (with `scep_manual_approval = true`)."""
    # Here, not at the top: the SCEP core (and the metrics it counts in) is needed by
    # these three commands only, not by every other command's start or --help.
    from orchardist.scep.approvals import describe

    async def load(services: Services) -> list[dict[str, str]]:
        return [describe(tx) for tx in await services.approvals.pending()]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No SCEP requests are waiting.")
        return
    table = Table()
    table.add_column("transaction ID", overflow="fold")  # copied into `approve`: never cut
    table.add_column("subject", overflow="fold")
    table.add_column("received")
    for row in rows:
        table.add_row(row["transaction_id"], row["subject"], row["received"])
    Console().print(table)


@app.command("approve")
@audited("scep.approve", named("transaction_id"))
def approve(ctx: typer.Context, transaction_id: str) -> None:
    """Issue the certificate of a pending request; the device gets it at its next poll."""
    from orchardist.scep.approvals import NotPendingError

    async def run(services: Services) -> str:
        cert = await services.approvals.approve(transaction_id)
        return f"{cert.serial_number:x}"

    try:
        serial = with_services(ctx, run)
    except NotPendingError as exc:
        fail(str(exc), "see `orchardist scep pending`")
    except ValueError as exc:
        fail(f"the CA refused the CSR, so the request was rejected: {exc}")
    note().detail["serial"] = serial
    typer.echo(f"Approved: certificate {serial} issued.")


@app.command("reject")
@audited("scep.reject", named("transaction_id"))
def reject(ctx: typer.Context, transaction_id: str) -> None:
    """Refuse a pending request; the device gets a failure at its next poll."""
    from orchardist.scep.approvals import NotPendingError

    async def run(services: Services) -> None:
        await services.approvals.reject(transaction_id)

    try:
        with_services(ctx, run)
    except NotPendingError as exc:
        fail(str(exc), "see `orchardist scep pending`")
    typer.echo("Rejected.")
