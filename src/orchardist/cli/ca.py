"""`orchardist ca …`: the device CA."""

from __future__ import annotations

from typing import Annotated

import typer
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.cli.auditing import audited
from orchardist.cli.common import fail, pki_files_of, settings_of
from orchardist.pki.store import KeyMaterialError

app = typer.Typer(help="The certificate authority that issues device identities.")


@app.command("create-ra")
@audited("ca.create_ra", lambda args: ([], {"force": args["force"]}))
def create_ra(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing RA")] = False,
) -> None:
    """Issue a SCEP registration authority: devices then encrypt to it and it signs the
    replies, so the CA key only signs certificates. Restart the server to use it."""
    files = pki_files_of(settings_of(ctx))
    try:
        ca = files.load_ca()
        if files.load_ra() is not None and not force:
            fail("an RA exists already", "add --force to replace it")
    except KeyMaterialError as exc:
        fail(str(exc))
    ra = ca.issue_registration_authority("Orchardist SCEP RA")
    files.save_ra(ra)
    typer.echo(f"RA certificate written to {files.ra_cert}; restart `orchardist serve`.")


@app.command("export")
def export(ctx: typer.Context) -> None:
    """Print the CA certificate (PEM), e.g. to install it as a trusted root."""
    try:
        ca = pki_files_of(settings_of(ctx)).load_ca()
    except KeyMaterialError as exc:
        fail(str(exc))
    typer.echo(ca.certificate.public_bytes(Encoding.PEM).decode("ascii"), nl=False)
