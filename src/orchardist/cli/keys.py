"""`orchardist keys rotate`: seal every secret at rest under a new master key (the
database's sealed values and the key files in pki/); `orchardist keys passphrase`: a key
file's passphrase, for openssl.

Stop `serve` first: a running server keeps the key it started with and would seal new
values with it. With the key file (the default), rotate writes the new key in front of the
old one, re-seals every value, then drops the old key; a crash in between leaves both keys
in the file, and a re-run finishes with the same new key. With master_key or
master_key_command, put the new key first and the old one after it in that source, run
rotate, then remove the old key from the source.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from orchardist.cli.common import fail, settings_of
from orchardist.keys.master import MasterKeyError, MasterKeys
from orchardist.pki.store import KeyMaterialError, PkiFiles

app = typer.Typer(help="The master key that seals secrets at rest.", no_args_is_help=True)
console = Console(highlight=False)


@app.command("rotate")
def rotate(ctx: typer.Context) -> None:
    """Re-seal tokens, profile bodies and secret-bearing commands under a new master key
    (stop `serve` first). Safe to re-run after a crash."""
    from orchardist.keys.sources import key_source
    from orchardist.storage.sql.migrate import upgrade
    from orchardist.storage.sql.repositories import open_storage
    from orchardist.storage.sql.sealing import count_not_current, reseal

    settings = settings_of(ctx)
    source = key_source(settings)

    async def run() -> None:
        url = settings.resolved_database_url
        await upgrade(url)
        keys = source.load()
        if source.writable and len(keys.keys) == 1:  # else: finish the unfinished rotation
            keys = MasterKeys((MasterKeys.generate().keys[0], *keys.keys))
            source.save(keys)  # the old key stays until every value is re-sealed
        storage = await open_storage(url, keys)
        try:
            count = await reseal(storage.database, keys)
            left = await count_not_current(storage.database, keys)
        finally:
            await storage.close()
        if left:
            fail(f"{left} values are still sealed by an old key", "stop `serve`, then re-run")
        console.print(f"re-sealed {count} values under master key {keys.current_id}")
        # Each key file is written anew under the new key and renamed over the old one.
        moved = PkiFiles.in_data_dir(settings.data_dir, keys).reseal()
        console.print(f"re-encrypted {len(moved)} key files: {', '.join(p.name for p in moved)}")
        if source.writable:
            source.save(MasterKeys(keys.keys[:1]))
            console.print(f"old keys dropped from {source.file}")
        elif len(keys.keys) > 1:
            old = ", ".join(keys.ids[1:])
            console.print(f"remove the old keys ({old}) from {source.describe()}")

    try:
        asyncio.run(run())
    except (MasterKeyError, KeyMaterialError) as exc:
        fail(str(exc), f"check {source.describe()}, then re-run (see docs/keys.md)")


@app.command("passphrase")
def passphrase(
    ctx: typer.Context,
    key_file: Annotated[
        Path, typer.Argument(help="A key file in the data dir's pki folder, e.g. pki/ca.key")
    ],
) -> None:
    """Print the passphrase that opens a key file (encrypted PKCS#8 PEM), for
    `openssl pkey -in FILE -passin stdin`: the file stays encrypted on disk."""
    from orchardist.keys.sources import key_source

    settings = settings_of(ctx)
    files = PkiFiles.in_data_dir(settings.data_dir)
    path = files.directory / key_file.name
    try:
        files = PkiFiles(files.directory, key_source(settings).load())
        password = files.password_of(path)
    except (MasterKeyError, KeyMaterialError) as exc:
        fail(str(exc), "see docs/keys.md")
    if password is None:
        fail(f"{path} is not encrypted", "`orchardist serve` or `orchardist keys rotate` does it")
    typer.echo(password.decode("ascii"))
