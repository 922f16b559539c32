"""`orchardist simulate`: virtual devices against a server, for demos, tests and load."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from orchardist.cli.common import fail, print_json
from orchardist.cli.simulate_seed import seed

if TYPE_CHECKING:
    from orchardist.simulator.fleet import FleetReport
    from orchardist.simulator.ota import OtaLogin
    from orchardist.simulator.profile import EnrollmentPlan
    from orchardist.simulator.seeded import SeededFleet


UNREACHABLE_HINT = (
    "→ check that `orchardist serve` runs and listens at that address: the enrollment profile "
    "names the server's public_url (orchardist.toml, set by `init --public-url`), and "
    "`serve --port` must match its port; `simulate --server URL` sends elsewhere"
)


app = typer.Typer(no_args_is_help=False, subcommand_metavar="[seed OPTIONS]")


@app.callback(invoke_without_command=True)
def simulate(
    ctx: typer.Context,
    devices: Annotated[
        int | None,
        typer.Option("--devices", min=1, help="How many devices (default 1; --fleet: all)"),
    ] = None,
    fleet: Annotated[
        Path | None,
        typer.Option(
            "--fleet",
            help="Run a fleet seeded into the database (`simulate seed`) from its file, "
            "instead of enrolling new devices",
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, help="Devices talking at once (one connection each)"),
    ] = 16,
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
    apns_port: Annotated[
        int | None,
        typer.Option(
            "--apns-port",
            help="Run a local APNs peer on this port; devices then check in only when pushed "
            "(point the server's ORCHARDIST_APNS_URL at https://127.0.0.1:PORT)",
        ),
    ] = None,
    apns_feed: Annotated[
        str | None,
        typer.Option(
            "--apns-feed",
            help="Instead of --apns-port: take pushes from a local APNs peer in another "
            "process (python -m orchardist.simulator.apns_peer --feed-port PORT) at HOST:PORT",
        ),
    ] = None,
    apns_client_ca: Annotated[
        Path | None,
        typer.Option("--apns-client-ca", help="CA the server's push certificate comes from"),
    ] = None,
    apns_ca_out: Annotated[
        Path,
        typer.Option(
            "--apns-ca-out", help="Where to write the peer's CA (ORCHARDIST_APNS_CA_FILE)"
        ),
    ] = Path("apns-peer-ca.pem"),
    ota: Annotated[
        str | None,
        typer.Option("--ota", help="Enroll over the air at this server (scheme://host:port)"),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="--ota: directory user")] = None,
    password: Annotated[str | None, typer.Option("--password", help="--ota: password")] = None,
    device_ca: Annotated[
        Path | None, typer.Option("--device-ca", help="--ota: CA (PEM) playing Apple's device CA")
    ] = None,
    device_ca_key: Annotated[
        Path | None, typer.Option("--device-ca-key", help="--ota: its private key (PEM)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Enroll virtual devices through the profile's SCEP and MDM payloads, then check in
    and answer every command with realistic data. With --apns-port they wait for pushes
    until --duration ends or the process is told to stop (SIGTERM/Ctrl-C); with
    --apns-feed they take the pushes of a peer running in its own process.

    Thousands of push-woken devices fit in one process: they share one key and one
    connection pool, and --concurrency of them talk at once. For a large fleet, write it
    straight into the database with `simulate seed --out fleet.json` (where the data folder
    is), then run it with `simulate --fleet fleet.json` instead of enrolling. See
    docs/simulate.md."""
    if ctx.invoked_subcommand is not None:
        return
    from orchardist.simulator.apns_peer import ApnsPeer
    from orchardist.simulator.fleet import retarget, run_fleet
    from orchardist.simulator.push_feed import FeedClient

    seeded = _seeded(fleet) if fleet is not None else None
    if seeded is not None:
        plan = seeded.plan
        devices = len(seeded.certificates) if devices is None else devices
        if devices > len(seeded.certificates):
            fail(
                f"{fleet} holds {len(seeded.certificates)} devices that can check in, "
                f"not {devices}",
                "seed again with a larger --live, or ask for fewer --devices",
            )
    else:
        plan = _ota_placeholder() if ota else _plan(profile)
        devices = 1 if devices is None else devices
    login = None
    if ota is not None:
        if not (user and password and device_ca and device_ca_key):
            fail("--ota needs --user, --password, --device-ca and --device-ca-key")
        login = _ota_login(ota, user, password, device_ca, device_ca_key)
    if server:
        plan = retarget(plan, server)
    client_ca = None
    if apns_port is not None and apns_feed is not None:
        fail("give --apns-port or --apns-feed, not both", "one peer wakes the devices")
    if apns_port is not None:
        if apns_client_ca is None:
            fail("--apns-port needs --apns-client-ca", "give the CA that issued the push cert")
        client_ca = apns_client_ca.read_bytes()
    with Progress(transient=True, disable=as_json) as bar:
        enrolling = bar.add_task("enrolling", total=devices)
        checking = bar.add_task("checking in", total=devices * rounds if duration is None else None)

        def advance(event: str) -> None:
            bar.advance(enrolling if event == "enrolled" else checking)

        async def run() -> FleetReport:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signal_number, stop.set)
            peer: ApnsPeer | FeedClient | None = None
            if client_ca is not None and apns_port is not None:
                peer = ApnsPeer(client_ca, port=apns_port)
                await peer.start()
                apns_ca_out.write_bytes(peer.ca_pem)
            elif apns_feed is not None:
                try:
                    peer = FeedClient(apns_feed)
                    await peer.start()
                except (OSError, ValueError) as exc:
                    fail(f"cannot reach the APNs peer's feed at {apns_feed}: {exc}",
                         "start the peer with --feed-port first")  # fmt: skip
            try:
                return await run_fleet(
                    plan,
                    devices=devices,
                    rounds=rounds,
                    interval=interval,
                    duration=duration,
                    not_now=not_now,
                    concurrency=concurrency,
                    progress=advance,
                    peer=peer,
                    stop=stop,
                    ota=login,
                    seeded=seeded,
                )
            finally:
                if peer is not None:
                    await peer.close()

        report = asyncio.run(run())
    if as_json:
        print_json(dataclasses.asdict(report))
    else:
        typer.echo(
            f"{report.enrolled}/{report.devices} enrolled, {report.sessions} sessions, "
            f"{report.commands} commands answered, {report.not_now} put off (NotNow), "
            f"{report.pushes} pushes, "
            f"{report.seconds:.1f} s"
        )
        for failure in report.failures[:10]:
            typer.echo(f"  failed: {failure}", err=True)
    if any(": cannot reach " in failure for failure in report.failures):
        typer.echo(UNREACHABLE_HINT, err=True)
    if report.failures:
        raise typer.Exit(1)


def _plan(profile: Path) -> EnrollmentPlan:
    from orchardist.simulator.profile import ProfileError, read_profile

    try:
        return read_profile(profile.read_bytes())
    except (OSError, ProfileError) as exc:
        fail(f"cannot use {profile}: {exc}", "make one with `orchardist enrollment-profile`")


def _seeded(path: Path) -> SeededFleet:
    from orchardist.simulator.seeded import FleetFileError, SeededFleet

    try:
        return SeededFleet.load(path)
    except FleetFileError as exc:
        fail(str(exc), "write one with `orchardist simulate seed --out FILE`")


def _ota_placeholder() -> EnrollmentPlan:
    """Before OTA, a device knows nothing of the server: the walk fills the plan in."""
    from orchardist.simulator.profile import EnrollmentPlan

    return EnrollmentPlan("", None, 2048, "", "", "", ())


def _ota_login(base: str, user: str, password: str, ca: Path, key: Path) -> OtaLogin:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from orchardist.simulator.ota import OtaLogin

    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        fail(f"{key} is not an RSA key")
    return OtaLogin(
        base, user, password, (x509.load_pem_x509_certificate(ca.read_bytes()), private)
    )


app.command("seed")(seed)
