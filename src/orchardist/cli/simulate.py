"""`orchardist simulate`: virtual devices against a server, for demos, tests and load."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from orchardist.cli.common import fail, print_json


def simulate(
    devices: Annotated[int, typer.Option("--devices", min=1, help="How many devices")] = 1,
    profile: Annotated[
        Path,
        typer.Option("--profile", help="An enrollment profile (orchardist enrollment-profile)"),
    ] = Path("orchardist-enroll.mobileconfig"),
    server: Annotated[
        str | None, typer.Option("--server", help="Send to this scheme://host:port instead")
    ] = None,
    rounds: Annotated[
        int, typer.Option("--rounds", min=0, help="Check-in sessions per device")
    ] = 1,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between sessions")] = 1.0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Keep checking in for this many seconds")
    ] = None,
    not_now: Annotated[
        float, typer.Option("--not-now", min=0.0, max=1.0, help="Fraction of commands put off")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Enroll virtual devices through the profile's SCEP and MDM payloads, then check in
    and answer every command with realistic data."""
    from orchardist.simulator.fleet import retarget, run_fleet
    from orchardist.simulator.profile import ProfileError, read_profile

    try:
        plan = read_profile(profile.read_bytes())
    except (OSError, ProfileError) as exc:
        fail(f"cannot use {profile}: {exc}", "make one with `orchardist enrollment-profile`")
    if server:
        plan = retarget(plan, server)
    with Progress(transient=True, disable=as_json) as bar:
        enrolling = bar.add_task("enrolling", total=devices)
        checking = bar.add_task("checking in", total=devices * rounds if duration is None else None)

        def advance(event: str) -> None:
            bar.advance(enrolling if event == "enrolled" else checking)

        report = asyncio.run(
            run_fleet(
                plan,
                devices=devices,
                rounds=rounds,
                interval=interval,
                duration=duration,
                not_now=not_now,
                progress=advance,
            )
        )
    if as_json:
        print_json(dataclasses.asdict(report))
    else:
        typer.echo(
            f"{report.enrolled}/{report.devices} enrolled, {report.sessions} sessions, "
            f"{report.commands} commands answered, {report.not_now} put off (NotNow), "
            f"{report.seconds:.1f} s"
        )
        for failure in report.failures[:10]:
            typer.echo(f"  failed: {failure}", err=True)
    if report.failures:
        raise typer.Exit(1)
