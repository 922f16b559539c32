"""Apps in a test server's library: the .ipa that tests/apps/factory.py builds, uploaded
through the app library (`Services.apps.upload`, as the API and CLI upload), then given
catalog groups and a description as an admin would."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchardist.storage.apps import AppChanges, AppVersion
from orchardist.wiring import Services
from tests.apps.factory import build_ipa


async def store_app(
    services: Services,
    folder: Path,
    *,
    groups: Sequence[str] = (),
    description: str | None = None,
    **build: Any,
) -> AppVersion:
    """Build an .ipa (`build` goes to build_ipa), upload it, and give the app `groups` and
    `description` for the catalog."""
    bundle_id = build.get("bundle_id", "com.example.expenses")
    path = build_ipa(folder / f"{bundle_id}-{build.get('version', '1.0')}.ipa", **build)
    assert services.apps is not None
    with path.open("rb") as source:
        uploaded = await services.apps.upload(iter(lambda: source.read(65536), b""))
    changes = AppChanges(description=description, catalog_groups=list(groups))
    await services.storage.update_app(uploaded.version.bundle_id, changes, datetime.now(UTC))
    return uploaded.version
