"""Apps in a test server's library, as an upload leaves them: the .ipa that
tests/apps/factory.py builds, read with read_ipa, its file and icon in the server's file
store and its version in storage (with the catalog groups and description given)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchardist.apps.ipa import read_ipa
from orchardist.storage.apps import AppChanges, AppVersion, NewAppVersion
from orchardist.wiring import Services
from tests.apps.factory import build_ipa

MAX_BYTES = 64 * 1024 * 1024
READ_FROM_BUNDLE = ("bundle_id", "short_version", "build", "display_name", "minimum_os")


async def store_app(
    services: Services,
    folder: Path,
    *,
    groups: Sequence[str] = (),
    description: str | None = None,
    **build: Any,
) -> AppVersion:
    """Build an .ipa (`build` goes to build_ipa), store it as an upload would, and give
    the app `groups` and `description` for the catalog."""
    bundle_id = build.get("bundle_id", "com.example.expenses")
    path = build_ipa(folder / f"{bundle_id}-{build.get('version', '1.0')}.ipa", **build)
    bundle = read_ipa(path)
    files = services.files
    assert files is not None
    with path.open("rb") as source:
        stored = await files.put(iter(lambda: source.read(65536), b""), MAX_BYTES)
    icon = await files.put([bundle.icon_png], MAX_BYTES) if bundle.icon_png else None
    now = datetime.now(UTC)
    read = {key: getattr(bundle, key) for key in READ_FROM_BUNDLE}
    new = NewAppVersion(
        **read, device_family=tuple(bundle.device_family), sha256=stored.sha256,
        size=stored.size, icon_sha256=icon.sha256 if icon is not None else None,
    )  # fmt: skip
    version = await services.storage.add_app_version(new, now)
    changes = AppChanges(description=description, catalog_groups=list(groups))
    await services.storage.update_app(bundle.bundle_id, changes, now)
    return version
