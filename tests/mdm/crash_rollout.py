"""A kill -9 in the middle of an app update's roll-out pass: every device has version 1 of
a few in-house apps, version 2 of each is uploaded, and the server's pass queues the
InstallApplications (AppStore.queue_app_command: each command with its devices' rows). It
is killed once the database holds some of them and not all; a new server on the same port
sends the rest; then the whole fleet checks in and answers.

One pass queues one InstallApplication per app version per batch of rows it reads, so a
single app reaches a few hundred devices in one command: several apps give a pass several
commands to be killed between. The test holds the roll-out's lease (as another `serve`
process would) while it uploads, so the pass starts only once the server is up and watched.
"""

from __future__ import annotations

import asyncio
import plistlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text

from orchardist.storage.sql.repositories import open_storage
from tests.apps.factory import build_ipa
from tests.mdm import crash_leases
from tests.mdm.crash_fleet import Fleet, Tally
from tests.mdm.crash_reconcile import _api, _kill_when_queued, all_queued
from tests.mdm.crash_run import Stored, _server, database_url, prepare, stored
from tests.server import free_port

INSTALL = "InstallApplication"
PREFIX = "com.example.crash.app"
# The update goes out as fast as the pass can send it: the pace is not what is tested.
# The restarted server takes the dead one's roll-out lease over within seconds.
FAST = {"ORCHARDIST_APPS__ROLLOUT_PER_MINUTE": "100000", **crash_leases.SHORT_LEASES}
ROLLOUT = "apps.rollout"

Version = tuple[str, int]  # (bundle id, version id)
States = dict[str, tuple[int, int]]  # state -> (rows, rows whose command targets the device)


@dataclass(frozen=True)
class KilledRollout:
    devices: int
    versions: list[Version]  # the update: version 2 of each app
    at_kill: Stored  # the dead server's InstallApplications
    states_at_kill: States
    after: Stored
    tally: Tally
    states: States
    received: dict[str, list[Version]]  # udid -> the InstallApplications it was sent

    def as_row(self) -> dict[str, int]:
        return {
            "devices": self.devices, "apps": len(self.versions),
            "commands": self.after.commands, "commands_at_kill": self.at_kill.commands,
            "installs_at_kill": self.at_kill.targets, "installs": self.after.targets,
            "deliveries": sum(len(sent) for sent in self.received.values()),
            "results": self.after.acknowledged, "duplicates": self.tally.duplicates,
            "lost": self.devices * len(self.versions) - self.after.acknowledged,
        }  # fmt: skip


def killed_rollout(
    data_dir: Path, env: Mapping[str, str], count: int, apps: int, *, timeout: float = 300
) -> KilledRollout:
    token, members = prepare(data_dir, env, count)
    url, port, env = database_url(data_dir, env), free_port(), {**env, **FAST}
    asyncio.run(crash_leases.hold(url, ROLLOUT))
    with _server(data_dir, env, port) as (base, doomed), _api(base, token) as api:
        bundles = [f"{PREFIX}{n}" for n in range(apps)]
        for bundle in bundles:
            upload(api, data_dir, bundle, "1.0")
            reply = api.post(f"/api/v1/apps/{bundle}/assignments", json={"all": True})
            assert reply.status_code == 200, reply.text
        asyncio.run(_installed_everywhere(url))  # as if the fleet had version 1
        versions = [(bundle, upload(api, data_dir, bundle, "2.0")) for bundle in bundles]
        asyncio.run(crash_leases.let_go(url, ROLLOUT))  # the server's next tick takes it
        asyncio.run(_kill_when_queued(url, INSTALL, 1, doomed))
    at_kill, states_at_kill = asyncio.run(stored(url, INSTALL)), asyncio.run(app_states(url))
    with _server(data_dir, env, port) as (base, _):
        # The new server's pass sends the rest; the devices check in once it has.
        asyncio.run(asyncio.wait_for(all_queued(url, INSTALL, count * apps), timeout))
        fleet = Fleet(base, members)
        asyncio.run(asyncio.wait_for(fleet.run(), timeout))
    installs = asyncio.run(install_versions(url))
    received = {
        udid: [installs[uuid] for uuid in sent if uuid in installs]
        for udid, sent in fleet.tally.received.items()
    }
    after = asyncio.run(stored(url, INSTALL))
    return KilledRollout(count, versions, at_kill, states_at_kill, after, fleet.tally,
                         asyncio.run(app_states(url)), received)  # fmt: skip


def upload(api: httpx.Client, data_dir: Path, bundle: str, version: str) -> int:
    """An in-house .ipa of `bundle` at `version` through the API; its version id."""
    ipa = build_ipa(data_dir.parent / f"{bundle}-{version}.ipa", bundle_id=bundle,
                    version=version, build=version)  # fmt: skip
    with ipa.open("rb") as handle:
        files = {"file": (ipa.name, handle, "application/octet-stream")}
        reply = api.post("/api/v1/apps", files=files)
    assert reply.status_code == 201, reply.text
    return int(reply.json()["version_id"])


async def app_states(url: str) -> States:
    query = text(
        "SELECT d.state, count(*), count(t.device_id) FROM device_apps d"
        " LEFT JOIN command_targets t"
        "  ON t.command_uuid = d.command_uuid AND t.device_id = d.device_id"
        " WHERE d.bundle_id LIKE :prefix GROUP BY d.state"
    )
    rows = await _read(url, query, {"prefix": f"{PREFIX}%"})
    return {str(state): (int(count), int(targeted)) for state, count, targeted in rows}


async def install_versions(url: str) -> dict[str, Version]:
    """Every InstallApplication's UUID -> the app version its ManifestURL names."""
    query = text("SELECT command_uuid, body FROM commands WHERE request_type = :request_type")
    found: dict[str, Version] = {}
    for uuid, body in await _read(url, query, {"request_type": INSTALL}):
        manifest = plistlib.loads(body)["Command"]["ManifestURL"]
        *_, bundle, name = urlsplit(manifest).path.split("/")  # …/{bundle}/{version}.plist
        found[str(uuid)] = (bundle, int(name.removesuffix(".plist")))
    return found


async def _installed_everywhere(url: str) -> None:
    """Every device's rows as a ManagedApplicationList saying version 1 is there leaves
    them, so version 2 is an update."""
    query = text(
        "UPDATE device_apps SET state = 'managed', installed_version_id = desired_version_id,"
        " next_attempt_at = NULL, attempts = 0 WHERE bundle_id LIKE :prefix"
    )
    storage = await open_storage(url)
    try:
        await storage.database.write(lambda conn: conn.execute(query, {"prefix": f"{PREFIX}%"}))
    finally:
        await storage.close()


async def _read(url: str, query: object, params: dict[str, str]) -> list[tuple[object, ...]]:
    storage = await open_storage(url)
    try:
        rows = await storage.database.read(lambda conn: conn.execute(query, params).all())
    finally:
        await storage.close()
    return [tuple(row) for row in rows]
