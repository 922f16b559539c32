"""/console/profiles: the profile library, versions, assignments, per-device status, and
the profile builder."""

from __future__ import annotations

from orchardist.web.console.session import page_router

router = page_router()
