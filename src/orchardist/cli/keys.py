"""`orchardist keys rotate`: seal every secret at rest under a new master key.

Stop `serve` first: a running server keeps the key it started with and would seal new
values with it. With the key file (the default), rotate writes the new key in front of the
old one, re-seals every value, then drops the old key; a crash in between leaves both keys
in the file, and a re-run finishes with the same new key. With master_key or
master_key_command, put the new key first and the old one after it in that source, run
rotate, then remove the old key from the source.
"""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from orchardist.cli.common import fail, settings_of
from orchardist.keys.master import MasterKeyError, MasterKeys

app = typer.Typer(help="The master key that seals secrets at rest.", no_args_is_help=True)
console = Console(highlight=False)


@app.command("rotate")
def rotate(ctx: typer.Context) -> None:
    """Re-seal tokens, profile bodies and secret-bearing commands under a new master key
    (stop `serve` first). Safe to re-run after a crash."""
    from orchardist.storage.sql.migrate import upgrade
    from orchardist.storage.sql.repositories import open_storage
    from orchardist.storage.sql.sealing import count_not_current, reseal
    from orchardist.wiring import key_source

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
        if source.writable:
            source.save(MasterKeys(keys.keys[:1]))
            console.print(f"old keys dropped from {source.file}")
        elif len(keys.keys) > 1:
            old = ", ".join(keys.ids[1:])
            console.print(f"remove the old keys ({old}) from {source.describe()}")

    try:
        asyncio.run(run())
    except MasterKeyError as exc:
        fail(str(exc), f"check {source.describe()}")
