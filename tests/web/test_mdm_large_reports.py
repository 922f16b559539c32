"""Large reports over /mdm/connect read by the server's worker process store what the
same reports read in process store, on every storage backend."""

from __future__ import annotations

import dataclasses
import plistlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchardist.simulator.library import stocked_apps, stocked_certificates
from orchardist.storage.inventory import DeviceInventory
from tests.db import backends
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio

APPS = {"InstalledApplicationList": [*stocked_apps(500), {"Identifier": "x" * 300}]}
CERTIFICATES = {
    "CertificateList": [*stocked_certificates(230), {"CommonName": "bad", "Data": b"\x30\x03no"}]
}


@dataclasses.dataclass
class Outcome:
    inventory: DeviceInventory
    results: list[bytes]
    refusal: tuple[int, str]
    digested: int


async def _answer_both(server: Server) -> Outcome:
    device = await server.device("UDID-LARGE", 90)
    await server.enroll(device)
    results = []
    for request_type, answer in (
        ("InstalledApplicationList", APPS),
        ("CertificateList", CERTIFICATES),
    ):
        uuid = await server.queue(request_type, {}, device)
        sent = plistlib.loads((await server.report(device, "Idle")).content)
        assert sent["CommandUUID"] == uuid
        reply = await server.report(device, "Acknowledged", CommandUUID=uuid, **answer)
        assert (reply.status_code, reply.content) == (200, b"")
        (target,) = await server.services.storage.command_targets(uuid, datetime.now(UTC))  # type: ignore[attr-defined]
        results.append(target.result.replace(uuid.encode(), b"COMMAND-UUID"))
    inventory = await server.services.storage.get_inventory("UDID-LARGE")  # type: ignore[attr-defined]
    refused = await server.report(device, "Acknowledged", **APPS)  # no CommandUUID
    return Outcome(
        inventory=dataclasses.replace(inventory, updated_at=datetime.min),
        results=results,
        refusal=(refused.status_code, refused.text),
        digested=server.services.reports.digested,
    )


@pytest.mark.parametrize("backend", backends())
async def test_worker_read_reports_store_what_in_process_ones_do(
    backend: str, tmp_path: Path
) -> None:
    outcomes: dict[int, Any] = {}
    for processes in (1, 0):
        settings = {"mdm_max_body_bytes": 4_000_000, "mdm_report_processes": processes}
        async with running(backend, tmp_path / str(processes), **settings) as server:
            outcomes[processes] = await _answer_both(server)
    worker, in_process = outcomes[1], outcomes[0]
    assert (worker.digested, in_process.digested) == (3, 0)
    assert len(worker.inventory.apps) == 500
    assert len(worker.inventory.certificates) == 231
    assert worker.inventory.certificates[-1].not_after is None
    assert worker.inventory == in_process.inventory
    assert worker.results == in_process.results
    assert worker.refusal == in_process.refusal
    assert worker.refusal[0] == 400
