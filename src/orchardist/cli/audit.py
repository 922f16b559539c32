"""`orchardist audit`: who did what, newest first — the audit log GET /api/v1/audit reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table
from rich.text import Text

from orchardist.cli.common import WideOption, fail, print_json, table_console, with_services
from orchardist.storage.audit import Outcome

if TYPE_CHECKING:
    from orchardist.wiring import Services

TIME_HELP = "A time (2026-11-30, 2026-11-30T09:00, UTC unless it says) or an age (30m, 24h, 7d)"
_AGE = re.compile(r"(\d{1,6})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
SHOWN_TARGETS = 3


def audit(
    ctx: typer.Context,
    actor: Annotated[
        str | None, typer.Option(help="An API token, a console account or cli:USER")
    ] = None,
    action: Annotated[str | None, typer.Option(help="e.g. command.queue, token.create")] = None,
    target: Annotated[str | None, typer.Option(help="A UDID, profile, group:NAME…")] = None,
    outcome: Annotated[Outcome | None, typer.Option(help="ok, denied or failed")] = None,
    since: Annotated[str | None, typer.Option(help=f"From: {TIME_HELP}")] = None,
    until: Annotated[str | None, typer.Option(help=f"Before: {TIME_HELP}")] = None,
    before: Annotated[
        int | None, typer.Option(min=1, help="Older than this entry id (the next page)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries to show")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    wide: WideOption = False,
) -> None:
    """Who did what, newest first: every change from the API, the console and this CLI,
    with its targets and outcome (ok, denied, failed and why). Filters combine."""
    from orchardist.audit import AuditQuery, entry_fields

    now = datetime.now(UTC)
    query = AuditQuery(
        actor=actor, action=action, target=target, outcome=outcome,
        since=_when(since, "--since", now), until=_when(until, "--until", now),
        before=before, limit=limit,
    )  # fmt: skip

    async def load(services: Services) -> list[dict[str, Any]]:
        return [entry_fields(entry) for entry in await services.audit.entries(query)]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No audit entries match.")
        return
    table_console(wide).print(_table(rows))
    if len(rows) == limit:
        typer.echo(f"(the newest {limit}; older: --before {rows[-1]['id']})")


def _when(text: str | None, option: str, now: datetime) -> datetime | None:
    if text is None:
        return None
    age = _AGE.fullmatch(text.strip())
    if age is not None:
        return now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        fail(f"{option} {text!r} is not a time", "e.g. 2026-11-30, 2026-11-30T09:00Z, 24h, 7d")


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", Column("at", no_wrap=True), "actor", "via", "action",
                  Column("targets", overflow="fold"),
                  Column("outcome", overflow="fold"))  # fmt: skip
    for row in rows:
        targets = row["targets"]
        shown = ", ".join(targets[:SHOWN_TARGETS])
        if len(targets) > SHOWN_TARGETS:
            shown += f" (+{len(targets) - SHOWN_TARGETS} more)"
        outcome = row["outcome"] + (f": {row['reason']}" if row["reason"] else "")
        # Text(): names and reasons come from users; rich must not read them as markup.
        cells = (str(row["id"]), row["at"].strftime("%Y-%m-%d %H:%M:%S"), row["actor"],
                 row["via"], row["action"], shown, outcome)  # fmt: skip
        table.add_row(*(Text(cell) for cell in cells))
    return table
