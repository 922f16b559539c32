"""One pusher in a process of its own, for tests and `make bench` that run several on one
database: `python -m tests.push.pusher_process DATABASE_URL APNS_URL CA_FILE CERT KEY`.

It opens the storage and the APNs sender, prints `ready`, waits for a line on stdin (so
that several start their fan-out together), drains every due push with the server's own
Pusher, and prints one JSON line: how many jobs it claimed, APNs accepted, and its CPU
seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from orchardist.push.pusher import Pusher, PushSettings
from orchardist.push.sender import ApnsSender, client_context
from orchardist.storage.sql.repositories import open_storage


async def run(args: argparse.Namespace) -> dict[str, float]:
    storage = await open_storage(args.database)
    context = client_context(args.cert, args.key, args.ca_file)
    sender = ApnsSender(args.apns_url, args.topic, context, concurrency=args.concurrency)
    settings = PushSettings(
        apns_url=args.apns_url,
        ca_file=args.ca_file,
        concurrency=args.concurrency,
        schedule=tuple(args.schedule),
        batch=args.batch,
    )

    async def senders() -> ApnsSender:
        return sender

    pusher = Pusher(storage, senders, settings, clock=lambda: datetime.now(UTC))
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        claimed = await pusher.drain()
        return {"claimed": claimed, "pushed": pusher.pushed, "cpu": time.process_time() - cpu}
    finally:
        await sender.close()
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument("apns_url")
    parser.add_argument("ca_file", type=Path)
    parser.add_argument("cert", type=Path)
    parser.add_argument("key", type=Path)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--schedule", type=int, nargs="+", default=[60, 300, 1800, 3600])
    # On uvloop, as the server runs it (uvicorn picks uvloop when it is installed).
    print(json.dumps(uvloop.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
