"""`orchardist serve`: the HTTPS server (or plain HTTP behind a TLS-terminating proxy)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchardist.cli.common import fail, settings_of
from orchardist.logs import configure_logging
from orchardist.pki.store import PkiFiles


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on")] = 8443,
    http: Annotated[
        bool, typer.Option("--http", help="Plain HTTP, for running behind a TLS-terminating proxy")
    ] = False,
) -> None:
    """Serve /scep, /healthz and the rest until interrupted."""
    settings = settings_of(ctx)
    files = PkiFiles.in_data_dir(settings.data_dir)
    if not files.has_ca():
        fail(f"no CA in {settings.data_dir}", "run `orchardist init --hostname HOST` first")
    if not http and not files.has_server():
        fail("no server TLS certificate", "re-run `orchardist init --hostname HOST`")
    import uvicorn  # imported late, like the app: other commands need neither

    from orchardist.web.app import create_app

    configure_logging(settings.log_level)
    tls = {} if http else {"ssl_certfile": files.server_cert, "ssl_keyfile": files.server_key}
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        **tls,  # type: ignore[arg-type]
    )
