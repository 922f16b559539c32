"""/console/groups: static groups and their members."""

from __future__ import annotations

from orchardist.web.console.session import page_router

router = page_router()
