"""/console/enrollment: invitations, OTA sessions and held SCEP requests."""

from __future__ import annotations

from orchardist.web.console.session import page_router

router = page_router()
