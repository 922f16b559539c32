"""Scenario `apps`: in-house app files and manifests (issue 13).

- A 500 MB .ipa (the test factory's, padded with a stored member) streamed into the
  LocalFileStore the way an upload arrives — 64 KiB chunks from an async iterator — with
  SHA-256, fsync and the atomic rename included; MB/s against the 200 MB/s target.
- `read_ipa` on the same file (every member inflated once and CRC-checked, the icon
  converted, the profile verified): MB/s.
- Manifests built per second: the manifest plist, two signed links and the itms-services
  link, as a catalog page or an InstallApplication needs them.

- Manifest and icon fetches per second through the app (in process, ASGI: the server's
  time, not a network's): GET of the signed /apps/manifest/… and /apps/icons/… links of an
  app uploaded through AppLibrary, 8 requests in flight, link checks included.

Everything is written to a temporary folder (the system's default) and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.apps.factory import build_ipa
from tests.web.mdm_server import running

from orchardist.apps.files import LocalFileStore
from orchardist.apps.ipa import read_ipa
from orchardist.apps.links import LinkSigner
from orchardist.apps.manifest import itms_services_link, manifest_plist

TARGET_MB_PER_S = 200
CHUNK = 64 * 1024
MB = 1_000_000
FETCHES = 2000
IN_FLIGHT = 8
FETCH_NOTE = f"in process (ASGI), {IN_FLIGHT} in flight, signed link checked"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    size = args.ipa_mb * MB
    with tempfile.TemporaryDirectory(prefix="orchardist-bench-apps-") as tmp:
        folder = Path(tmp)
        ipa = build_ipa(folder / "Big.ipa", size_padding=size - 64 * 1024)
        total = ipa.stat().st_size
        store = LocalFileStore(folder / "files")
        started = time.perf_counter()
        stored = asyncio.run(store.put(_chunks(ipa), total))
        put_seconds = time.perf_counter() - started
        started = time.perf_counter()
        read_ipa(store.path(stored.sha256))
        read_seconds = time.perf_counter() - started
    put_rate = total / MB / put_seconds
    manifests = _manifests_per_second(args.manifests)
    with tempfile.TemporaryDirectory(prefix="orchardist-bench-fetch-") as tmp:
        fetched = asyncio.run(_fetches_per_second(Path(tmp), FETCHES))
    note = f"{total / MB:,.0f} MB, 64 KiB chunks, fsync included"
    return [
        _row(".ipa stored (stream + SHA-256 + fsync)", put_rate, "MB/s", note),
        _row(
            "ratio to the 200 MB/s target",
            put_rate / TARGET_MB_PER_S,
            "",
            ">= 1 meets it",
        ),
        _row(
            "read_ipa (every member read and CRC-checked)",
            total / MB / read_seconds,
            "MB/s",
            "the padding is stored: a deflated .ipa inflates slower",
        ),
        _row("manifests built /s", manifests, "1/s", "plist + 2 signed links + itms link"),
        _row("manifest fetches /s", fetched["manifest"], "1/s", FETCH_NOTE),
        _row("icon fetches /s", fetched["icon"], "1/s", FETCH_NOTE),
    ]


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """The file as an upload arrives: small chunks, the loop free between them."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _manifests_per_second(count: int) -> float:
    signer = LinkSigner(b"b" * 32)
    expires = datetime.now(UTC) + timedelta(hours=6)
    base = "https://mdm.example.com/apps"
    started = time.perf_counter()
    for n in range(count):
        digest = f"{n:064x}"
        ipa_url = f"{base}/files/{digest}.ipa?token={signer.sign(digest, expires)}"
        manifest_plist("com.example.expenses", "2.3.1", "Expenses", ipa_url, f"{base}/icon.png")
        subject = f"manifest/com.example.expenses/{n}"
        itms_services_link(f"{base}/manifest.plist?token={signer.sign(subject, expires)}")
    return count / (time.perf_counter() - started)


async def _fetches_per_second(folder: Path, count: int) -> dict[str, float]:
    """GETs of an uploaded app's signed manifest and icon links through the app, with
    IN_FLIGHT at a time; each answer must be a 200."""
    ipa = build_ipa(folder / "Expenses.ipa")
    rates: dict[str, float] = {}
    async with running("sqlite", folder / "server") as server:
        services = server.services
        assert services.apps is not None
        assert services.app_urls is not None
        uploaded = await services.apps.upload(_chunks(ipa))
        version = uploaded.version
        assert version.icon_sha256 is not None
        links = {
            "manifest": services.app_urls.manifest_url(version.bundle_id, version.version_id),
            "icon": services.app_urls.icon_url(version.icon_sha256),
        }
        for kind, url in links.items():
            path = url.split("://", 1)[1].split("/", 1)[1]
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def fetch(path: str = "/" + path, gate: asyncio.Semaphore = gate) -> None:
                async with gate:
                    answer = await server.http.get(path)
                    assert answer.status_code == 200, (path, answer.status_code)

            started = time.perf_counter()
            await asyncio.gather(*(fetch() for _ in range(count)))
            rates[kind] = count / (time.perf_counter() - started)
    return rates


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "apps", "metric": metric, "value": value, "unit": unit, "note": note}
