"""`device show` for people: the device, what its inventory says, its latest commands.
The values come from the shared presenter (`orchardist.mdm.summary`), as in the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Column, Table

from orchardist.mdm.summary import DeviceSummary


def device_table(rows: list[dict[str, Any]], *, reasons: bool = False) -> Table:
    """`device list`: one line per device (rows of `device_fields`), with why each breaks
    the compliance rules when `reasons`."""
    table = Table("serial", "model", "OS", "enrolled", "last seen", "compliance")
    table.columns.insert(0, Column("UDID", no_wrap=True))
    if reasons:
        table.add_column("reasons")
    for row in rows:
        model = row["product_name"] or row["model"] or ""
        enrolled = "yes" if row["enrolled"] else "no"
        seen = row["last_seen_at"].isoformat(timespec="seconds") if row["last_seen_at"] else ""
        compliance = row["compliance"]
        cells = [row["serial_number"], model, row["os_version"], enrolled, seen,
                 compliance["status"].replace("_", "-")]  # fmt: skip
        if reasons:
            cells.append("; ".join(compliance["reasons"]))
        # What devices report is shown as text, never read as rich markup.
        table.add_row(escape(row["udid"]), *(escape(cell or "") for cell in cells))
    return table


def render(device: dict[str, Any], summary: DeviceSummary | None, now: datetime) -> Group:
    parts: list[RenderableType] = [
        f"[bold]{escape(device['udid'])}[/]",
        _pairs([*_identity(device), _compliance(device["compliance"])]),
        "",
    ]
    if summary is None:
        parts.append(
            f"[dim]No inventory yet: `orchardist device query {escape(device['udid'])}` asks "
            "for it (the answer comes when the device checks in).[/]"
        )
    else:
        reported = _ago(summary.inventory_updated_at, now)
        parts += [f"[bold]Inventory[/] [dim](reported {reported})[/]",
                  _pairs(_inventory(summary, now))]  # fmt: skip
    if device["commands"]:
        table = Table("command", "status", "UUID", title="Latest commands", title_justify="left")
        for command in device["commands"]:
            table.add_row(command["request_type"], command["status"], command["command_uuid"])
        parts += ["", table]
    return Group(*parts)


def _identity(device: dict[str, Any]) -> list[tuple[str, str]]:
    model = " ".join(v for v in (device["model_name"], device["product_name"] or device["model"])
                     if v)  # fmt: skip
    enrolled = device["state"].replace("_", " ")  # enrolled, checked out, retired…
    if device["enrolled"] and device["enrolled_at"]:
        enrolled += f" since {_when(device['enrolled_at'])}"
    os_version = " ".join(v for v in (device["os_version"], _paren(device["build_version"])) if v)
    rows = [
        ("name", device["device_name"] or ""),
        ("serial", device["serial_number"] or ""),
        ("model", model),
        ("OS", os_version),
        ("state", enrolled),
        ("last seen", _when(device["last_seen_at"]) if device["last_seen_at"] else "never"),
        ("push topic", device["topic"]),
        ("last push", _when(device["pushed_at"]) if device["pushed_at"] else "never"),
    ]
    if device["push_token_invalid_at"]:
        refused = _when(device["push_token_invalid_at"])
        rows.append(("push token", f"refused by APNs {refused}: pushable after its next check-in"))
    # What the device reported is shown as text, never read as rich markup.
    return [(key, escape(value)) for key, value in rows]


def _compliance(compliance: dict[str, Any]) -> tuple[str, str]:
    status = compliance["status"].replace("_", "-")
    if status == "non-compliant":
        status = f"[yellow]{status}[/]"
    lines = [status, *(f"  {escape(reason)}" for reason in compliance["reasons"])]
    return "compliance", "\n".join(lines)


def _inventory(summary: DeviceSummary, now: datetime) -> list[tuple[str, str]]:
    battery = summary.battery_percent
    rows = [
        ("battery", "unknown" if battery is None else f"{battery} %"),
        ("storage", _storage(summary)),
        ("passcode", _passcode(summary)),
        ("encryption", summary.encryption or "not reported"),
        ("apps", str(summary.app_count) if summary.app_count else "none reported"),
    ]
    expiring = summary.expiring_certificates
    if not expiring:
        return [*rows, ("certificates", "none expire within 30 days")]
    lines = [f"{len(expiring)} expiring within 30 days:"]
    for cert in expiring:
        due = ("expired" if cert.not_after < now else
               f"in {cert.days_left} day(s)" if cert.days_left else "within a day")  # fmt: skip
        name = escape(cert.common_name or "(no name)")
        lines.append(f"  [yellow]{name}[/]: {cert.not_after:%Y-%m-%d} ({due})")
    return [*rows, ("certificates", "\n".join(lines))]


def _storage(summary: DeviceSummary) -> str:
    total, free = summary.storage_capacity_gb, summary.storage_available_gb
    if total is None:
        return "not reported"
    if free is None:
        return f"{total:.1f} GB"
    return f"{free:.1f} GB free of {total:.1f} GB ({100 - free / total * 100:.0f} % used)"


def _passcode(summary: DeviceSummary) -> str:
    if summary.passcode_present is None:
        return "not reported"
    if not summary.passcode_present:
        return "[yellow]none[/]"
    compliant = {True: "compliant", False: "[yellow]not compliant[/]", None: ""}
    return ", ".join(v for v in ("set", compliant[summary.passcode_compliant]) if v)


def _pairs(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", justify="right", no_wrap=True, min_width=12)
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _when(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _ago(value: datetime, now: datetime) -> str:
    minutes = int((now - value).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // 1440} days ago"


def _paren(value: str | None) -> str:
    return f"({value})" if value else ""
