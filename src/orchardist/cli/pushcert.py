"""`orchardist pushcert …`: the APNs push certificate that lets the server wake devices."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from cryptography.hazmat.primitives import serialization

from orchardist.cli.auditing import audited, note
from orchardist.cli.common import (
    fail,
    pki_files_of,
    print_json,
    settings_of,
    with_services,
)
from orchardist.config import Settings
from orchardist.pki.store import PkiFiles
from orchardist.push import replacement
from orchardist.push.certificate import (
    PushCertificate,
    PushCertificateError,
    describe,
    from_p12,
    from_pem,
    push_csr,
    stored,
)
from orchardist.push.replacement import Replaced, TopicChangeError
from orchardist.push.stand_in import STAND_IN_TOPIC, stand_in_identity
from orchardist.push.vendor import VendorSignError
from orchardist.push.vendor import vendor_sign as sign_request

if TYPE_CHECKING:
    from orchardist.wiring import Services

app = typer.Typer(help="The APNs push certificate (its topic is what devices enroll with).")


@app.command("csr")
def csr(
    key_out: Annotated[Path, typer.Option("--key-out", help="Where to write the new key")] = Path(
        "push.key"
    ),
    csr_out: Annotated[Path, typer.Option("--csr-out", help="Where to write the CSR")] = Path(
        "push.csr"
    ),
) -> None:
    """Make a key and a certificate signing request for a new push certificate."""
    if key_out.exists():
        fail(f"{key_out} exists", "choose another --key-out: that key may be in use")
    key, request = push_csr(replacement.CSR_COMMON_NAME)
    key_out.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_out.chmod(0o600)
    csr_out.write_bytes(request.public_bytes(serialization.Encoding.PEM))
    typer.echo(
        f"Wrote {key_out} (keep it secret) and {csr_out}.\n"
        "Next: have the CSR signed by an MDM vendor certificate (your vendor, or yours with\n"
        f"`orchardist pushcert vendor-sign --vendor-cert VENDOR.p12 --csr {csr_out}`), upload\n"
        "the result at https://identity.apple.com/pushcert, download the certificate, then:\n"
        f"  orchardist pushcert import --cert MDM_Certificate.pem --key {key_out}"
    )


@app.command("vendor-sign")
def vendor_sign(
    vendor_cert: Annotated[
        Path, typer.Option("--vendor-cert", help="Your MDM vendor certificate and key (.p12)")
    ],
    csr_file: Annotated[Path, typer.Option("--csr", help="The CSR from `pushcert csr`")],
    password: Annotated[
        str | None, typer.Option("--password", help="The .p12 password, if it has one")
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the request")] = Path(
        "push-request.b64"
    ),
) -> None:
    """Sign a push-certificate CSR with your own MDM vendor certificate, producing the file
    Apple's push certificates portal takes."""
    try:
        request = sign_request(
            csr_file.read_bytes(),
            vendor_cert.read_bytes(),
            password.encode() if password is not None else None,
        )
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    except VendorSignError as exc:
        fail(str(exc))
    for warning in request.warnings:
        typer.echo(f"warning: {warning}", err=True)
    try:
        out.write_bytes(request.data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", "choose another -o")
    typer.echo(
        f"Wrote {out}.\n"
        "Next: sign in at https://identity.apple.com/pushcert with your organisation's Apple ID\n"
        f"(the same one every year), upload {out}, download the certificate, then import it\n"
        "with the key made alongside the CSR:\n"
        "  orchardist pushcert import --cert MDM_Certificate.pem --key push.key"
    )


@app.command("import")
@audited("pushcert.import", lambda args: ([], {"force": args["force"]}))
def import_(
    ctx: typer.Context,
    cert: Annotated[Path | None, typer.Option("--cert", help="The certificate (PEM)")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Its private key (PEM)")] = None,
    p12: Annotated[Path | None, typer.Option("--p12", help="Certificate and key in a .p12")] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="For the .p12 or the key")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Accept a different topic: every enrolled device is lost"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Use a push certificate from Apple. Its topic goes into new enrollment profiles."""
    secret = password.encode() if password is not None else None
    now = datetime.now(UTC)
    try:
        if p12 is not None:
            pushed = from_p12(p12.read_bytes(), password=secret, now=now)
        elif cert is not None and key is not None:
            pushed = from_pem(cert.read_bytes(), key.read_bytes(), password=secret, now=now)
        else:
            fail("give --cert and --key, or --p12")
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    except PushCertificateError as exc:
        fail(str(exc))

    _save_push(ctx, pushed, force=force)
    _report(pushed, as_json)


def _save_push(ctx: typer.Context, pushed: PushCertificate, *, force: bool) -> None:
    """Store it, unless enrolled devices use another topic (see `push.replacement`)."""
    files = pki_files_of(settings_of(ctx))
    placeholder = Settings.model_fields["apns_topic"].default

    async def store(services: Services) -> Replaced:
        return await replacement.replace(
            files, services.storage, pushed, placeholder=placeholder, force=force
        )

    try:
        replaced = with_services(ctx, store)
    except TopicChangeError as exc:
        fail(
            str(exc),
            "renew the existing certificate (same Apple ID, same topic) instead; --force loses "
            "every enrolled device",
        )
    for topic, count in replaced.stranded.items():
        typer.echo(
            f"warning: {count} device(s) enrolled with the placeholder topic {topic} "
            "cannot be woken with this certificate: re-enroll them to manage them with pushes",
            err=True,
        )
    note().targets.append(pushed.topic)
    note().detail["not_after"] = pushed.not_after


@app.command("test-cert")
@audited("pushcert.test_cert", lambda args: ([], {"force": args["force"]}))
def stand_in_cert(
    ctx: typer.Context,
    out_dir: Annotated[
        Path, typer.Option("--dir", help="Where to write the CA the local APNs peer trusts")
    ] = Path("."),
    topic: Annotated[str, typer.Option("--topic", help="The topic devices enroll with")] = (
        STAND_IN_TOPIC
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Replace a push certificate already imported")
    ] = False,
) -> None:
    """A stand-in push certificate for the local APNs peer (`orchardist simulate
    --apns-port`), to try pushes without Apple. Apple's servers refuse it."""
    files = pki_files_of(settings_of(ctx))
    if files.has_push() and not force:
        fail("a push certificate is imported already", "add --force to replace it")
    made = stand_in_identity(datetime.now(UTC), topic=topic)
    pushed = PushCertificate(made.certificate, made.key, made.topic)
    _save_push(ctx, pushed, force=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_file = out_dir / "apns-test-ca.pem"
    ca_file.write_bytes(made.ca.public_bytes(serialization.Encoding.PEM))
    peer_ca = out_dir / "apns-peer-ca.pem"
    typer.echo(
        f"Imported a stand-in push certificate for topic {made.topic}; wrote {ca_file}.\n"
        "Next: run virtual devices woken by a local APNs peer that trusts it, and point the\n"
        "server at that peer (apns_url and apns_ca_file in orchardist.toml, or):\n"
        f"  orchardist simulate … --apns-port 2197 --apns-client-ca {ca_file} "
        f"--apns-ca-out {peer_ca}\n"
        f"  ORCHARDIST_APNS_URL=https://127.0.0.1:2197 ORCHARDIST_APNS_CA_FILE={peer_ca} "
        "orchardist serve\n"
        "Import Apple's certificate with `orchardist pushcert import` before real devices "
        "enroll."
    )


@app.command("show")
def show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """Topic and expiry of the push certificate in use."""
    pushed = load_push(pki_files_of(settings_of(ctx)))
    if pushed is None:
        fail("no push certificate yet", "see `orchardist pushcert csr`")
    _report(pushed, as_json)


def load_push(files: PkiFiles) -> PushCertificate | None:
    try:
        return stored(files)
    except PushCertificateError as exc:
        fail(f"the stored push certificate is unusable: {exc}")


def _report(pushed: PushCertificate, as_json: bool) -> None:
    described = describe(pushed, datetime.now(UTC))
    if as_json:
        print_json(described)
        return
    typer.echo(f"topic     {described['topic']}")
    typer.echo(f"expires   {described['not_after']} ({described['days_left']} days)")
    if described["warning"]:
        typer.echo(f"warning   {described['warning']}", err=True)
