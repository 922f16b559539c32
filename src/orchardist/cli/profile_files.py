"""`orchardist profile build` and `profile validate`: profiles as files, no server needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchardist.cli.common import (
    err_console,
    fail,
    pki_files_of,
    print_json,
    settings_of,
)

if TYPE_CHECKING:
    from orchardist.profiles.spec import SpecCheck


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

    from orchardist.pki.store import KeyMaterialError
    from orchardist.profiles import envelope

    profile = load_spec_warning(spec)
    if encrypt_for is not None:
        try:
            recipient = x509.load_pem_x509_certificate(encrypt_for.read_bytes())
        except (OSError, ValueError) as exc:
            fail(f"cannot use {encrypt_for} as a device certificate: {exc}")
        profile = envelope.encrypt_for(profile, recipient)
    body = envelope.serialize(profile)
    if sign:
        files = pki_files_of(settings_of(ctx))
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


def load_spec_warning(spec: Path) -> dict[str, Any]:
    """The built profile, after warning about secrets written in the spec; exits with the
    problems when it does not build."""
    from rich.markup import escape

    from orchardist.profiles.builders import SpecError
    from orchardist.profiles.secrets import plaintext_secrets
    from orchardist.profiles.spec import build_profile, read_spec

    try:
        raw = read_spec(spec)
        for warning in plaintext_secrets(raw):
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        return build_profile(raw, base_dir=spec.parent, env=os.environ)
    except SpecError as exc:
        fail(f"{spec}: {exc}", "fix the spec; docs/profiles.md lists the payload types")


def validate(
    file: Annotated[Path, typer.Argument(help="A spec (.toml) or a .mobileconfig, signed or not")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check a spec, or any profile (ours, Apple Configurator's, another MDM's), against
    Apple's schema; a signed one must verify. Exit 1 when it has errors."""
    from orchardist.profiles import envelope
    from orchardist.profiles.spec import check_spec
    from orchardist.profiles.validate import check_profile

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    kind = envelope.kind_of(data, file.name)
    if kind == "unknown":
        fail(f"{file} is not a profile",
             "give a .mobileconfig (plist, signed or not) or a spec (TOML)")  # fmt: skip
    if kind == "spec":
        _report(_spec_result(check_spec(file)), as_json)
        return
    try:
        read = envelope.read(data)
    except envelope.ProfileReadError as exc:
        fail(f"{file}: {exc}")
    report = check_profile(read.profile, unknown_keys_are_errors=False)
    _report(
        {
            "kind": "signed profile" if read.signer else "profile",
            "identifier": read.profile.get("PayloadIdentifier"),
            "signed_by": read.signer.subject.rfc4514_string() if read.signer else None,
            "encrypted": "EncryptedPayloadContent" in read.profile,
            "payloads": _payload_types(read.profile),
            "errors": [str(p) for p in report.errors],
            "warnings": [str(p) for p in report.warnings],
        },
        as_json,
    )


def _spec_result(checked: SpecCheck) -> dict[str, Any]:
    profile = checked.profile or {}
    return {
        "kind": "spec",
        "identifier": profile.get("PayloadIdentifier"),
        "signed_by": None,
        "encrypted": False,
        "payloads": _payload_types(profile),
        "errors": checked.errors,
        "warnings": checked.warnings,
    }


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        signed = f"signed by {result['signed_by']}" if result["signed_by"] else "not signed"
        if result["identifier"]:
            what = "spec" if result["kind"] == "spec" else signed
            typer.echo(f"{result['identifier']}: {len(result['payloads'])} payloads, {what}")
        for problem in result["errors"]:
            typer.echo(f"  error: {problem}", err=True)
        for problem in result["warnings"]:
            typer.echo(f"  warning: {problem}", err=True)
        if not result["errors"]:
            typer.echo("valid against Apple's schema")
    if result["errors"]:
        raise typer.Exit(1)


def _payload_types(profile: dict[str, Any]) -> list[Any]:
    return [p.get("PayloadType") for p in profile.get("PayloadContent", []) if isinstance(p, dict)]
