"""`orchardist ca …`: the device CA."""

from __future__ import annotations

import typer
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.cli.common import data_dir_of, fail
from orchardist.pki.store import KeyMaterialError, PkiFiles

app = typer.Typer(help="The certificate authority that issues device identities.")


@app.command("export")
def export(ctx: typer.Context) -> None:
    """Print the CA certificate (PEM), e.g. to install it as a trusted root."""
    try:
        ca = PkiFiles.in_data_dir(data_dir_of(ctx)).load_ca()
    except KeyMaterialError as exc:
        fail(str(exc))
    typer.echo(ca.certificate.public_bytes(Encoding.PEM).decode("ascii"), nl=False)
