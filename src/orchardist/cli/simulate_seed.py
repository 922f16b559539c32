"""`orchardist simulate seed`: enrolled virtual devices written straight into the database,
and the fleet file `orchardist simulate --fleet` plays the live ones from.

What the server would have written after each device's SCEP request, Authenticate and
TokenUpdate, in bulk: a certificate from the data dir's CA for each live device (over one
RSA key the fleet shares; see simulator/seeded.py), an enrollment with its facts, push
token and magic for every device, and its compliance verdict under this data dir's rules
(a TokenUpdate evaluates the device: without one, the first `serve` would evaluate the
whole fleet at once, beside whatever a load test measures). Signing is the slow part (a
millisecond or two per certificate with an RSA-2048 CA), so only the devices that will
run get a certificate; the rest can be queued to, pushed and listed but never check in.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchardist.cli.auditing import audited
from orchardist.cli.common import fail, pki_files_of, print_json, settings_of

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from orchardist.config import Settings
    from orchardist.pki.ca import CertificateAuthority
    from orchardist.simulator.profile import EnrollmentPlan
    from orchardist.storage import IssuedCertificate
    from orchardist.storage.sql.seeding import SeededDevice


def _describe(args: dict[str, object]) -> tuple[list[str | None], dict[str, object]]:
    return [], {"devices": args["devices"], "live": args["live"], "first": args["first"]}


@audited("fleet.seed", _describe)
def seed(
    ctx: typer.Context,
    devices: Annotated[
        int, typer.Option("--devices", min=1, help="How many enrolled devices to write")
    ] = 1000,
    live: Annotated[
        int | None,
        typer.Option(
            "--live",
            min=0,
            help="How many of them get a certificate and can check in (default: all); "
            "the rest are only rows",
        ),
    ] = None,
    profile: Annotated[
        Path,
        typer.Option(
            "--profile", help="The enrollment profile whose topic and URLs the devices use"
        ),
    ] = Path("orchardist-enroll.mobileconfig"),
    out: Annotated[
        Path, typer.Option("--out", help="The fleet file to write, for `simulate --fleet`")
    ] = Path("fleet.json"),
    first: Annotated[
        int, typer.Option("--first", min=0, help="Number of the first device (another range)")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Write --devices enrolled virtual devices straight into the database (for load tests:
    enrolling 100,000 over SCEP takes hours), the first --live with a certificate from this
    server's CA, and the fleet file `orchardist simulate --fleet FILE` runs them from."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from orchardist.simulator.profile import ProfileError, read_profile
    from orchardist.simulator.seeded import SeededFleet

    live = devices if live is None else min(live, devices)
    settings = settings_of(ctx)
    try:
        plan = read_profile(profile.read_bytes())
    except (OSError, ProfileError) as exc:
        fail(f"cannot use {profile}: {exc}", "make one with `orchardist enrollment-profile`")
    ca = pki_files_of(settings).load_ca()
    started = time.perf_counter()
    asyncio.run(_refuse_taken(settings.resolved_database_url, first, devices))
    key = rsa.generate_private_key(public_exponent=65537, key_size=plan.key_size)
    now = datetime.now(UTC)
    rows, certificates = _fleet(plan, ca, key, first, devices, live,
                                settings.certificate_validity_days, now)  # fmt: skip
    signed = time.perf_counter() - started
    asyncio.run(_write(settings, rows, certificates, now))
    SeededFleet(plan, key, first, tuple(c.der for c in certificates)).save(out)
    report = {
        "devices": devices,
        "live": live,
        "first": first,
        "fleet_file": str(out),
        "signing_seconds": round(signed, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time(), 2),  # this process's, start-up included
    }
    if as_json:
        print_json(report)
    else:
        typer.echo(
            f"{devices} devices seeded ({live} can check in: `orchardist simulate --fleet "
            f"{out}`), {report['seconds']} s"
        )


def _fleet(
    plan: EnrollmentPlan,
    ca: CertificateAuthority,
    key: rsa.RSAPrivateKey,
    first: int,
    devices: int,
    live: int,
    validity_days: int,
    now: datetime,
) -> tuple[list[SeededDevice], list[IssuedCertificate]]:
    from orchardist.simulator.made_up import SEEDED, made_up
    from orchardist.simulator.seeded import certify
    from orchardist.storage import DeviceFacts
    from orchardist.storage.sql.seeding import SeededDevice, issued

    rows, certificates = [], []
    for number in range(first, first + devices):
        facts = made_up(number, SEEDED)
        if number - first < live:
            cert = certify(ca, key, facts.udid, validity_days=validity_days, now=now)
            # Issued for its UDID, as a one-time challenge minted for a device ties it.
            certificates.append(issued(cert, facts.udid))
            sha256 = certificates[-1].sha256
        else:  # no certificate: a fingerprint none has, so nothing can speak for it
            sha256 = hashlib.sha256(f"seeded, no certificate: {facts.udid}".encode()).hexdigest()
        said = DeviceFacts(
            device_id=facts.udid,
            topic=plan.topic,
            serial_number=facts.serial,
            model=facts.model,
            model_name=facts.model_name,
            product_name=facts.product,
            os_version=facts.os_version,
            build_version="8L1",
            device_name=facts.device_name,
            imei=f"01 234567 {facts.serial[:6]} 1",
        )
        rows.append(SeededDevice(said, sha256, facts.token, facts.push_magic))
    return rows, certificates


async def _refuse_taken(url: str, first: int, devices: int) -> None:
    """Before any signing: seeding a device twice would fail half-way."""
    from orchardist.simulator.made_up import SEEDED, made_up
    from orchardist.storage.sql.repositories import open_storage
    from orchardist.storage.sql.seeding import already_enrolled

    udids = [made_up(number, SEEDED).udid for number in range(first, first + devices)]
    storage = await open_storage(url)
    try:
        taken = await already_enrolled(storage, udids)
    finally:
        await storage.close()
    if taken:
        fail(
            f"{taken} of these devices are enrolled already (seeded before)",
            "seed another range with --first N",
        )


async def _write(
    settings: Settings, rows: list[SeededDevice], certificates: list[IssuedCertificate],
    now: datetime,
) -> None:  # fmt: skip
    from orchardist.mdm.compliance_evaluator import ComplianceEvaluator
    from orchardist.storage.sql.repositories import open_storage
    from orchardist.storage.sql.seeding import write_seeded
    from orchardist.wiring import compliance_rules, utc_now

    storage = await open_storage(settings.resolved_database_url)
    try:
        await write_seeded(storage, rows, certificates, now)
        evaluator = ComplianceEvaluator(storage, compliance_rules(settings), clock=utc_now)
        await evaluator.refresh([row.facts.device_id for row in rows])
    finally:
        await storage.close()
