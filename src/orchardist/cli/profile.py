"""`orchardist profile …`: build, check, sign and encrypt configuration profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchardist.cli.common import data_dir_of, fail, print_json

app = typer.Typer(help="Configuration profiles: build from a spec, validate any profile.")


@app.command("build")
def build(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="A profile spec (TOML); see docs/profiles.md")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the .mobileconfig")],
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign with the server's certificate (chain included)")
    ] = False,
    encrypt_for: Annotated[
        Path | None,
        typer.Option("--encrypt-for", help="Encrypt the payloads to this device certificate (PEM)"),
    ] = None,
) -> None:
    """Build a profile from a spec: checked against Apple's schema, secrets resolved from
    the environment or files, optionally encrypted to one device and signed."""
    from cryptography import x509

    from orchardist.pki.store import KeyMaterialError, PkiFiles
    from orchardist.profiles import envelope
    from orchardist.profiles.builders import SpecError
    from orchardist.profiles.spec import load_spec

    try:
        profile = load_spec(spec)
    except SpecError as exc:
        fail(f"{spec}: {exc}", "fix the spec; docs/profiles.md lists the payload types")
    if encrypt_for is not None:
        try:
            recipient = x509.load_pem_x509_certificate(encrypt_for.read_bytes())
        except (OSError, ValueError) as exc:
            fail(f"cannot use {encrypt_for} as a device certificate: {exc}")
        profile = envelope.encrypt_for(profile, recipient)
    body = envelope.serialize(profile)
    if sign:
        files = PkiFiles.in_data_dir(data_dir_of(ctx))
        try:
            cert, key = files.load_server()
            chain = [files.load_ca().certificate]
        except KeyMaterialError as exc:
            fail(str(exc))
        body = envelope.sign(body, cert, key, chain)
    out.write_bytes(body)
    payloads = len(profile.get("PayloadContent", [])) if encrypt_for is None else "encrypted"
    typer.echo(
        f"Wrote {out}: {profile['PayloadIdentifier']} ({payloads} payloads"
        f"{', signed' if sign else ''})"
    )


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="A .mobileconfig, signed or not")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check any profile (ours, Apple Configurator's, another MDM's) against Apple's
    schema; a signed one must verify. Exit 1 when it has errors."""
    from orchardist.profiles import envelope
    from orchardist.profiles.validate import check_profile

    try:
        read = envelope.read(file.read_bytes())
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    except envelope.ProfileReadError as exc:
        fail(f"{file}: {exc}")
    report = check_profile(read.profile, unknown_keys_are_errors=False)
    result: dict[str, Any] = {
        "identifier": read.profile.get("PayloadIdentifier"),
        "signed_by": read.signer.subject.rfc4514_string() if read.signer else None,
        "encrypted": "EncryptedPayloadContent" in read.profile,
        "payloads": [
            p.get("PayloadType")
            for p in read.profile.get("PayloadContent", [])
            if isinstance(p, dict)
        ],
        "errors": [str(p) for p in report.errors],
        "warnings": [str(p) for p in report.warnings],
    }
    if as_json:
        print_json(result)
    else:
        signed = f"signed by {result['signed_by']}" if read.signer else "not signed"
        typer.echo(f"{result['identifier']}: {len(result['payloads'])} payloads, {signed}")
        for problem in result["errors"]:
            typer.echo(f"  error: {problem}", err=True)
        for problem in result["warnings"]:
            typer.echo(f"  warning: {problem}", err=True)
        if report.ok:
            typer.echo("valid against Apple's schema")
    if not report.ok:
        raise typer.Exit(1)
