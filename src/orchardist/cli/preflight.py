"""What `serve` checks before uvicorn starts: a server that cannot read its keys or its
database would start, answer nothing useful and leave its reason in a traceback. Each
check ends the command with what is wrong and what to do (cli.common.fail)."""

from __future__ import annotations

import asyncio

from orchardist.cli.common import fail
from orchardist.config import Settings
from orchardist.pki.store import KeyMaterialError, PkiFiles
from orchardist.push.certificate import PushCertificateError, stored


def check_keys(settings: Settings, files: PkiFiles, *, http: bool) -> None:
    """The CA, the server's TLS pair (also used to sign profiles, so needed behind a
    proxy too), and the SCEP RA and push pairs when they are there."""
    if not files.has_ca():
        fail(f"no CA in {settings.data_dir}", "run `orchardist init --hostname HOST` first")
    if not http and not files.has_server():
        fail("no server TLS certificate", "re-run `orchardist init --hostname HOST`")
    restore = (
        "restore the file from your backup, or give it back to the user that runs the "
        f"server (its folder {files.directory} with mode 0700, keys 0600)"
    )
    try:
        files.seal_plaintext()  # key files from before the master key: encrypted now
        files.load_ca()
        files.load_server()
        files.load_ra()
    except KeyMaterialError as exc:
        fail(f"cannot read the server's keys: {exc}", restore)
    try:
        stored(files)
    except (OSError, ValueError, PushCertificateError) as exc:
        fail(
            f"cannot read the push certificate ({files.push_cert}, {files.push_key.name}): {exc}",
            f"{restore}; or import it again with `orchardist pushcert import`",
        )


def check_database(settings: Settings) -> None:
    """The database answers a read (before the migrations run, so that a wrong URL or a
    stopped server is said plainly)."""
    from orchardist.storage.sql.health import safe_url, url_problem  # late, like the app

    url = settings.resolved_database_url
    problem = asyncio.run(url_problem(url))
    if problem is not None:
        fail(f"the database at {safe_url(url)} does not answer: {problem}", _hint(settings))


def migration_failed(settings: Settings, exc: Exception) -> None:
    """The migrations could not run: the same message as an unreachable database."""
    from orchardist.storage.sql.health import safe_url

    url = settings.resolved_database_url
    reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    fail(
        f"cannot update the database at {safe_url(url)}: {type(exc).__name__}: {reason}",
        _hint(settings),
    )


def _hint(settings: Settings) -> str:
    if settings.database_url:
        return (
            "start the database server, or correct database_url in the data dir's "
            "orchardist.toml (or ORCHARDIST_DATABASE_URL); then serve again"
        )
    return (
        f"restore {settings.data_dir}/orchardist.db from your backup, or give it back to "
        "the user that runs the server; then serve again"
    )
