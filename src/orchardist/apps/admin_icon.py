"""An admin's replacement for an app's icon, and going back to the .ipa's own.

The icon an app shows (in the catalog, and as the manifest's display and full-size image)
is the one read from its .ipa unless an admin has set one (`urls.app_icon`). Some .ipa
files have no icon this server can read, and some teams want a different one: PUT
/api/v1/apps/{bundle_id}/icon and `orchardist app catalog BUNDLE_ID --icon FILE.png` both
come here, so both check and store the same way.

What is accepted: a PNG (Apple's CgBI PNGs are converted, as the .ipa's own icons are),
square or not, each side between `MIN_SIDE` and `MAX_SIDE` pixels (57 is the smallest icon
iOS ever used, 1024 the App Store's), at most `MAX_ICON_UPLOAD_BYTES`. The PNG is stored in
the content-addressed file store; the previous replacement is deleted when no app or
version names it any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from orchardist.apps.cgbi import PngError, normalize_png, png_size
from orchardist.apps.files import FileStore
from orchardist.storage.apps import AppChanges, AppStore, StoredApp

MAX_ICON_UPLOAD_BYTES = 4 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 57, 1024


class IconRejectedError(ValueError):
    """Not an icon this server shows; str(err) says why and what to send instead."""


class NoSuchAppError(LookupError):
    """No app with this bundle id in the library."""


def browser_ready_icon(data: bytes) -> bytes:
    """`data` as a standard PNG of sensible size (CgBI converted); IconRejectedError if not.
    Blocking (a CgBI conversion decodes every pixel in Python): call it in a thread."""
    if len(data) > MAX_ICON_UPLOAD_BYTES:
        raise IconRejectedError(f"the icon is larger than {MAX_ICON_UPLOAD_BYTES} bytes")
    try:
        width, height = png_size(data)
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise IconRejectedError(
                f"the icon is {width} x {height} pixels: each side must be {MIN_SIDE} to "
                f"{MAX_SIDE} pixels (a 1024 x 1024 PNG is best)"
            )
        return normalize_png(data)
    except PngError as exc:
        raise IconRejectedError(f"{exc}: send a PNG image") from exc


async def set_app_icon(
    store: AppStore,
    files: FileStore,
    bundle_id: str,
    data: bytes | None,
    clock: Callable[[], datetime],
) -> StoredApp:
    """Replace the app's icon with the PNG `data`, or with None go back to the icon read
    from its .ipa. IconRejectedError (nothing stored) or NoSuchAppError."""
    before = await store.get_app(bundle_id)
    if before is None:
        raise NoSuchAppError(bundle_id)
    if data is None:
        changes = AppChanges(clear_icon=True)
    else:
        png = await asyncio.to_thread(browser_ready_icon, data)
        stored = await files.put([png], MAX_ICON_UPLOAD_BYTES)
        changes = AppChanges(icon_sha256=stored.sha256)
    app = await store.update_app(bundle_id, changes, clock())
    kept = app.icon_sha256 if app is not None else None
    # The old replacement, or ours when the app was removed meanwhile. Content-addressed:
    # another app or a version may name the same bytes, so ask the store first.
    for sha256 in {before.icon_sha256, changes.icon_sha256}:
        if sha256 is not None and sha256 != kept and not await store.file_referenced(sha256):
            await files.delete(sha256)
    if app is None:
        raise NoSuchAppError(bundle_id)
    return app
