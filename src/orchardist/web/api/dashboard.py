"""GET /api/v1/dashboard: the fleet in figures, the same ones the console's dashboard shows
(`dashboard_of` feeds both, so the page and the API never disagree)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from orchardist.push.certificate import PushCertificateError
from orchardist.push.certificate import stored as stored_push_certificate
from orchardist.web.api.auth import Reader, services_of
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["Dashboard"])
ServicesDep = Annotated[Services, Depends(services_of)]


class Dashboard(BaseModel):
    at: datetime = Field(description="When the figures were read")
    enrolled: int = Field(description="Devices enrolled now (TokenUpdate sent, not ended)")
    seen_24h: int = Field(description="Enrolled devices that checked in within 24 hours")
    seen_7d: int = Field(description="Enrolled devices that checked in within 7 days")
    stale: int = Field(description="Enrolled devices not seen for 7 days")
    non_compliant: int = Field(description="Devices whose compliance verdict is non_compliant")
    commands_pending: int = Field(description="Command targets queued, sent or NotNow'd")
    commands_failed_24h: int = Field(description="Targets answered with an error in 24 hours")
    profile_installs_failed: int = Field(description="Profiles a device refused to install")
    push_certificate_days_left: int | None = Field(
        description="Days until the APNs certificate expires; None without a usable one"
    )
    push_certificate_warning: str | None = Field(description="What to do about it, if anything")
    os_versions: dict[str, int] = Field(description="Enrolled devices per OS version, in order")


async def dashboard_of(services: Services, now: datetime) -> Dashboard:
    figures = await services.storage.dashboard_figures(now)
    days_left, warning = _push_certificate(services, now)
    return Dashboard(
        at=now,
        **asdict(figures),
        push_certificate_days_left=days_left,
        push_certificate_warning=warning,
    )


def _push_certificate(services: Services, now: datetime) -> tuple[int | None, str | None]:
    """As GET /api/v1/pushcert reads it; a missing or unreadable one is a warning here, not
    a refusal: the rest of the dashboard still matters."""
    try:
        pushed = stored_push_certificate(services.pki_files())
    except PushCertificateError as exc:
        return None, f"the stored push certificate is unusable: {exc}"
    if pushed is None:
        return None, "no push certificate yet: see `orchardist pushcert csr`"
    return pushed.days_left(now), pushed.warning(now)


@router.get("/dashboard", response_model=Dashboard, responses=refusals())
async def dashboard(services: ServicesDep, _: Reader) -> Dashboard:
    """Enrolled devices, when they last checked in, compliance, pending and failed commands,
    refused profiles, the push certificate's days left and the OS versions."""
    return await dashboard_of(services, datetime.now(UTC))
