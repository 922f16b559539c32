"""One kill -9 run: `orchardist serve --http` over a seeded fleet (tests/mdm/crash_fleet.py),
work queued through the API, the devices answering, SIGKILL once half of them have had
their answer taken, a new server on the same port, the devices going on; then what the
database holds, counted per command, target and device."""

from __future__ import annotations

import asyncio
import json
import plistlib
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from orchardist.storage.sql.repositories import open_storage
from tests.mdm.crash_fleet import Fleet, Tally, seed_fleet
from tests.server import ServerProcess, free_port, orchardist, serve_process

Queue = Callable[[httpx.Client], None]  # queues the work through the API, given a client


@dataclass(frozen=True)
class Stored:
    """What the database says about the commands of one RequestType."""

    commands: int  # commands of this RequestType
    targets: int  # (command, device) rows
    devices: int  # distinct devices among them
    acknowledged: int  # targets answered Acknowledged with a result
    unanswered: int


@dataclass(frozen=True)
class Figures:
    devices: int
    at_kill: Stored  # the dead server's database, before the restart
    after: Stored
    tally: Tally
    profiles: dict[str, int]  # the crash profile's device states (profile_states)

    def as_row(self) -> dict[str, Any]:
        return {
            "devices": self.devices, "deliveries": self.tally.deliveries,
            "results": self.after.acknowledged, "results_at_kill": self.at_kill.acknowledged,
            "duplicates": self.tally.duplicates, "lost": self.devices - self.after.acknowledged,
            "commands": self.after.commands, "targets": self.after.targets,
            "retried_in_transit": self.tally.retried,
        }  # fmt: skip


def database_url(data_dir: Path, env: Mapping[str, str]) -> str:
    return env.get("ORCHARDIST_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'orchardist.db'}"


def prepare(data_dir: Path, env: Mapping[str, str], count: int) -> tuple[str, Any]:
    """`orchardist init` and `count` seeded devices: (the admin token, the members)."""
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json", env=env))
    members = asyncio.run(seed_fleet(data_dir, database_url(data_dir, env), count))
    return str(admin["admin_token"]), members


async def stored(url: str, request_type: str) -> Stored:
    query = text(
        "SELECT count(DISTINCT c.command_uuid), count(t.device_id), count(DISTINCT t.device_id),"
        " sum(CASE WHEN t.status = 'acknowledged' AND t.result IS NOT NULL"
        "     AND t.answered_at IS NOT NULL THEN 1 ELSE 0 END),"
        " sum(CASE WHEN t.answered_at IS NULL THEN 1 ELSE 0 END)"
        " FROM commands c LEFT JOIN command_targets t ON t.command_uuid = c.command_uuid"
        " WHERE c.request_type = :request_type"
    )
    storage = await open_storage(url)
    try:
        row = await storage.database.read(
            lambda conn: conn.execute(query, {"request_type": request_type}).one()
        )
    finally:
        await storage.close()
    return Stored(*(int(value or 0) for value in row))


def killed_run(
    data_dir: Path,
    env: Mapping[str, str],
    count: int,
    request_type: str,
    queue: Queue,
    *,
    timeout: float = 600,
) -> Figures:
    """The whole run; `queue` puts `request_type` commands in for the fleet."""
    token, members = prepare(data_dir, env, count)
    url, port = database_url(data_dir, env), free_port()
    with _server(data_dir, env, port) as (base, doomed):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
            queue(api)
        fleet = Fleet(base, members)

        async def killed() -> tuple[Stored, Tally]:
            devices = asyncio.create_task(fleet.run())
            while fleet.tally.answered < count // 2:
                assert not devices.done(), "the devices finished before the kill"
                assert doomed.poll() is None, "the server ended before it could be killed"
                await asyncio.sleep(0.005)
            doomed.send_signal(signal.SIGKILL)
            await asyncio.to_thread(doomed.wait, 10)
            at_kill = await stored(url, request_type)
            with ExitStack() as stack:  # the next server, on the same port
                await asyncio.to_thread(stack.enter_context, _server(data_dir, env, port))
                await asyncio.wait_for(devices, timeout)
            return at_kill, fleet.tally

        at_kill, tally = asyncio.run(killed())
    after = asyncio.run(stored(url, request_type))
    return Figures(count, at_kill, after, tally, asyncio.run(profile_states(url)))


@contextmanager
def _server(
    data_dir: Path, env: Mapping[str, str], port: int
) -> Iterator[tuple[str, ServerProcess]]:
    with serve_process(data_dir, http=True, env=env, port=port) as running:
        yield running


def send_to_all(request_type: str) -> Queue:
    """One command for every enrolled device, through POST /api/v1/commands."""

    def queue(api: httpx.Client) -> None:
        body = {"request_type": request_type, "targets": {"all": True}}
        reply = api.post("/api/v1/commands", json=body, timeout=120)
        assert reply.status_code == 201, reply.text

    return queue


CLIP = "com.example.crash.clip"


def assign_profile_to_all(api: httpx.Client) -> None:
    """A web clip profile, assigned to every device: reconciling queues InstallProfile,
    its payloads encrypted to each device's certificate, one per device."""
    upload_profile(api)
    assign_to_all(api)


def upload_profile(api: httpx.Client) -> None:
    """The crash web clip profile, in the library."""
    profile = plistlib.dumps({
        "PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": CLIP,
        "PayloadUUID": "6F1C2B4E-0000-4000-8000-000000000015", "PayloadDisplayName": "Crash",
        "PayloadContent": [{
            "PayloadType": "com.apple.webClip.managed", "PayloadVersion": 1,
            "PayloadIdentifier": f"{CLIP}.1", "PayloadUUID": "6F1C2B4E-0000-4000-8000-000000000016",
            "Label": "Intranet", "URL": "https://intranet.example.com/",
        }],
    })  # fmt: skip
    reply = api.post("/api/v1/profiles", content=profile, timeout=60)
    assert reply.status_code == 201, reply.text


def assign_to_all(api: httpx.Client) -> None:
    """The crash profile assigned to every device; the reply once reconciliation is done."""
    reply = api.post(f"/api/v1/profiles/{CLIP}/assignments", json={"all": True}, timeout=600)
    assert reply.status_code == 200, reply.text


async def profile_states(url: str) -> dict[str, int]:
    """device_profiles of the crash profile: state -> devices."""
    query = text(
        "SELECT state, count(*) FROM device_profiles WHERE identifier = :identifier GROUP BY state"
    )
    storage = await open_storage(url)
    try:
        rows = await storage.database.read(
            lambda conn: conn.execute(query, {"identifier": CLIP}).all()
        )
    finally:
        await storage.close()
    return {str(state): int(count) for state, count in rows}
