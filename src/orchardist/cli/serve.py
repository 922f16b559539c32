"""`orchardist serve`: the HTTPS server (or plain HTTP behind a TLS-terminating proxy)."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import structlog
import typer

from orchardist import metrics
from orchardist.cli import preflight
from orchardist.cli.common import err_console, pki_files_of, settings_of
from orchardist.config import DATA_DIR_VARIABLE, Settings
from orchardist.logs import configure_logging
from orchardist.pki.store import PkiFiles

APP_FACTORY = "orchardist.web.app:create_app_for_worker"


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on")] = 8443,
    http: Annotated[
        bool, typer.Option("--http", help="Plain HTTP, for running behind a TLS-terminating proxy")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (one per core is typical)")
    ] = 1,
) -> None:
    """Serve /scep, /healthz and the rest until interrupted."""
    settings = settings_of(ctx)
    files = pki_files_of(settings)
    preflight.check_keys(settings, files, http=http)
    preflight.check_database(settings)
    import uvicorn  # imported late, like the app: other commands need neither

    from orchardist.storage.sql.migrate import upgrade
    from orchardist.web.app import create_app, served
    from orchardist.web.proxy import behind_proxies

    configure_logging(settings.log_level)
    _warn_if_unreachable(settings, port, http)
    # Migrate once here, before any worker starts, so that workers never race to do it.
    try:
        asyncio.run(upgrade(settings.resolved_database_url))
    except Exception as exc:  # answered a read, then failed to migrate: say so, no traceback
        preflight.migration_failed(settings, exc)
    asyncio.run(seal_on_start(settings, files))
    # uvicorn (OpenSSL) reads the TLS key itself: it gets the file's passphrase.
    tls = {} if http else {"ssl_certfile": files.server_cert, "ssl_keyfile": files.server_key,
                           "ssl_keyfile_password": _password(files)}  # fmt: skip
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        # The app reads X-Forwarded-For (and a forwarded client certificate) itself, only
        # from trusted_proxies (web/proxy.py): uvicorn's own handling would hide the peer.
        "proxy_headers": False,
        **tls,
    }
    if workers == 1:
        uvicorn.run(behind_proxies(served(create_app(settings)), settings), **options)
        return
    # Worker processes build their own app from the data dir, passed in the environment.
    os.environ[DATA_DIR_VARIABLE] = str(settings.data_dir.resolve())
    _share_metrics(settings)
    from orchardist.web.worker_sockets import serve_workers

    serve_workers(uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options))


async def seal_on_start(settings: Settings, files: PkiFiles) -> None:
    """Seal the rows left in the clear from before migration 0021, once per start and
    before any worker: a scan of the sealed columns' tables, so not on every CLI command
    (they read such rows as they are). After 0021 every writer seals, so a start that
    finds none is the last to look at them that finds any."""
    from orchardist.storage.sql.repositories import open_storage
    from orchardist.storage.sql.sealing import seal_plaintext

    assert files.keys is not None
    storage = await open_storage(settings.resolved_database_url, files.keys)
    try:
        await seal_plaintext(storage.database, files.keys)
    finally:
        await storage.close()


def _password(files: PkiFiles) -> str | None:
    password = files.password_of(files.server_key)
    return password.decode("ascii") if password is not None else None


def _share_metrics(settings: Settings) -> None:
    """Workers write their metrics to files that any worker's /metrics adds up; a folder
    the admin chose in PROMETHEUS_MULTIPROC_DIR is theirs to empty (docs/operations.md)."""
    if metrics.multiprocess_dir() is None:
        folder = settings.data_dir.resolve() / "metrics"
        metrics.prepare_multiprocess_dir(folder)
        os.environ[metrics.MULTIPROC_VARIABLE] = str(folder)


def _warn_if_unreachable(settings: Settings, port: int, http: bool) -> None:
    """Profiles and links name `settings.base_url`; a server listening elsewhere is one that
    devices never reach. Behind a proxy (--http) the proxy owns the public port."""
    if http or port == settings.public_listen_port:
        return
    hint = (
        f"serving on port {port}, but profiles and links name {settings.base_url} "
        f"(port {settings.public_listen_port}): devices will not reach this server there. "
        f"Serve with --port {settings.public_listen_port}, or set the public address with "
        f"`orchardist init --hostname {settings.hostname} --public-url "
        f"https://{settings.hostname}:{port}` and make the enrollment profile again "
        "(behind a TLS proxy: serve --http)"
    )
    structlog.get_logger("orchardist.serve").warning(
        "public_port_mismatch", port=port, public_url=settings.base_url
    )
    err_console.print(f"warning: {hint}", markup=False)
