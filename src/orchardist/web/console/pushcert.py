"""/console/pushcert: the APNs push certificate's status, CSR download and import."""

from __future__ import annotations

from orchardist.web.console.session import page_router

router = page_router()
