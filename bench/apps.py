"""Scenario `apps`: in-house app files and manifests (issue 13).

- A 500 MB .ipa (the test factory's, padded with a stored member) streamed into the
  LocalFileStore the way an upload arrives — 64 KiB chunks from an async iterator — with
  SHA-256, fsync and the atomic rename included; MB/s against the 200 MB/s target.
- `read_ipa` on the same file (every member inflated once and CRC-checked, the icon
  converted, the profile verified): MB/s.
- Manifests built per second: the manifest plist, two signed links and the itms-services
  link, as a catalog page or an InstallApplication needs them.

TODO(issue 13, app routes): manifest and icon fetches per second over HTTP(S) through the
app, once the routes serving them exist; no figure is reported until then.

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

from orchardist.apps.files import LocalFileStore
from orchardist.apps.ipa import read_ipa
from orchardist.apps.links import LinkSigner
from orchardist.apps.manifest import itms_services_link, manifest_plist

TARGET_MB_PER_S = 200
CHUNK = 64 * 1024
MB = 1_000_000


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


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "apps", "metric": metric, "value": value, "unit": unit, "note": note}
