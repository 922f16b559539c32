"""`orchardist init`: a data folder with config, database, CA, TLS certificate and admin token."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console

from orchardist.cli.common import (
    data_dir_of,
    err_console,
    load_or_fail,
    pki_files_of,
    print_json,
)
from orchardist.config import CONFIG_FILE_NAME, Settings, write_config
from orchardist.pki.ca import CertificateAuthority, fingerprint_sha256, generate_ca
from orchardist.pki.store import PkiFiles
from orchardist.tokens import create_api_token

console = Console()


def init(
    ctx: typer.Context,
    hostname: Annotated[
        str, typer.Option("--hostname", help="The name devices use to reach this server")
    ],
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="Where devices reach the server, e.g. https://mdm.example.com:8443 (a proxy's "
            "address when behind one); profiles and links name it. Default: "
            "https://HOSTNAME:8443",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing CA. Every device identity it issued stops being trusted.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create (or update) the data folder. Safe to re-run: an existing CA is kept unless
    --force, and the admin token is only made the first time."""
    data_dir = data_dir_of(ctx)
    given = {"hostname": hostname, **({"public_url": public_url} if public_url else {})}
    # Checked before anything is written: a typo in the existing file or the environment
    # stops init with nothing half-done.
    load_or_fail(data_dir, **given)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_config(data_dir, given)
    settings = load_or_fail(data_dir)
    _warn_if_unnamed(settings)
    # The master key (master.key, mode 0600, unless held elsewhere) is made first: the
    # CA and TLS keys are written encrypted under it.
    files = pki_files_of(settings)
    files.seal_plaintext()  # a re-run on a data dir from before the master key
    created_ca = force or not files.has_ca()
    ca = _new_ca(settings, files) if created_ca else files.load_ca()
    server_cert, server_key = ca.issue_server_certificate(hostname)
    files.save_server(server_cert, server_key, ca.certificate)
    admin_token = asyncio.run(_prepare_database(settings))
    summary = {
        "data_dir": str(data_dir.resolve()),
        "hostname": hostname,
        "public_url": settings.base_url,
        "ca": "created" if created_ca else "kept",
        "ca_sha256": fingerprint_sha256(ca.certificate),
        "database": _redacted_url(settings),
        "admin_token": admin_token,
    }
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)


def _write_config(data_dir: Path, given: dict[str, str]) -> None:
    path = data_dir / CONFIG_FILE_NAME
    values: dict[str, Any] = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
    values.update(given)
    write_config(data_dir, values)


def _warn_if_unnamed(settings: Settings) -> None:
    """A public URL whose host the TLS certificate does not name works only behind a proxy
    that presents its own certificate: say so now rather than when devices fail."""
    host = urlsplit(settings.base_url).hostname
    if host not in (settings.hostname, "localhost", "127.0.0.1"):
        err_console.print(
            f"warning: the public URL's host {host} is not --hostname {settings.hostname}, "
            "which the server's TLS certificate names: devices will refuse it unless a proxy "
            "with its own certificate for that host sits in front",
            markup=False,
        )


def _new_ca(settings: Settings, files: PkiFiles) -> CertificateAuthority:
    with console.status("Generating the CA key…"):
        cert, key = generate_ca(
            settings.ca_common_name,
            settings.organization,
            key_size=settings.ca_key_size,
            validity_days=settings.ca_validity_days,
        )
    ca = CertificateAuthority(cert, key)
    files.save_ca(ca)
    # An RA certified by the previous CA would no longer chain: drop it.
    for stale in (files.ra_cert, files.ra_key):
        stale.unlink(missing_ok=True)
    return ca


async def _prepare_database(settings: Settings) -> str | None:
    """Migrate, then make the first admin token; None when one exists already."""
    from orchardist.keys.sources import key_source
    from orchardist.storage.sql.migrate import upgrade
    from orchardist.storage.sql.repositories import open_storage

    url = settings.resolved_database_url
    await upgrade(url)
    # The master key file (mode 0600) is made here, before anything is sealed with it.
    storage = await open_storage(url, key_source(settings).load(create=True))
    try:
        return await create_api_token(storage, "admin", "admin")
    except ValueError:
        return None
    finally:
        await storage.close()


def _redacted_url(settings: Settings) -> str:
    url = settings.resolved_database_url
    scheme, sep, rest = url.partition("://")
    if "@" in rest:  # never print a database password
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(f"[bold green]Orchardist is ready[/] in {summary['data_dir']}")
    console.print(f"  hostname  {summary['hostname']}")
    console.print(f"  public    {summary['public_url']} (in profiles and links)")
    console.print(f"  CA        {summary['ca']} (SHA-256 {summary['ca_sha256']})")
    console.print(f"  database  {summary['database']}")
    if summary["admin_token"]:
        console.print("  admin API token (shown once, store it now):")
        console.print(f"    {summary['admin_token']}", highlight=False)
    else:
        console.print(
            "  admin API token: exists already (create more with `orchardist token create`)"
        )
