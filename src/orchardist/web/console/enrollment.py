"""/console/enrollment: how devices come in, and the requests waiting on an admin.

- Invitations (operators: enrollment.invite): a one-time link for a user, sent by e-mail
  and/or SMS through `services.inviter`, as POST /api/v1/invitations and `orchardist
  enroll invite` send it, recorded as `invitation.send` with the same targets and detail
  (never the link); the latest invitations with how each delivery went.
- Links: the directory sign-in page /enroll (when a directory is set up), a one-time
  enrollment link (`orchardist enroll token`, recorded as `enrollment.link`) and an
  enrollment profile with a fresh one-time challenge (`orchardist enrollment-profile`,
  recorded as `enrollment.profile`).
- Over-the-air sessions: who is enrolling or enrolled over the air, in which phase.
- Held SCEP requests (`scep_manual_approval = true`): admins (enrollment.approve) approve
  or reject each through `services.approvals`, as `orchardist scep approve|reject` do,
  recorded as `scep.approve` / `scep.reject` with the transactionID as the target.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from orchardist.accounts.permissions import Actor, Permission
from orchardist.mdm.enrollment import EnrollmentProfiles
from orchardist.scep.approvals import NotPendingError, describe
from orchardist.web.api.models import InvitationRequest
from orchardist.web.console import auditing
from orchardist.web.console.forms import form_of
from orchardist.web.console.session import (
    ConsoleRefusalError,
    CurrentAccount,
    page_router,
    require,
    services_of,
)
from orchardist.web.console.templating import render
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.console")
router = page_router()
Inviter = Annotated[Actor, require(Permission.INVITE)]
Approver = Annotated[Actor, require(Permission.SCEP_APPROVE)]
PAGE = "/console/enrollment"
PROFILE = "application/x-apple-aspen-config"


@router.get("/enrollment")
async def enrollment_page(request: Request, user: CurrentAccount) -> Response:
    services = services_of(request)
    now = datetime.now(UTC)
    context = {
        "title": "Enrollment",
        "invitations": await services.storage.list_invitations(),
        "sessions": await services.storage.list_ota_sessions(),
        "held": [describe(tx) for tx in await services.approvals.pending()],
        "manual_approval": services.settings.scep_manual_approval,
        "sign_in_url": _sign_in_url(services),
        "now": now,
        "done": request.query_params.get("done"),
    }
    return render(request, "enrollment.html", context)


@router.post("/enrollment/invitations")
async def invite(request: Request, actor: Inviter) -> Response:
    form = await form_of(request)
    fields = {k: str(form.get(k) or "").strip() or None for k in ("user", "email", "sms")}
    targets = [fields["user"] or ""]
    detail = {"email": fields["email"], "sms": fields["sms"]}
    try:
        asked = InvitationRequest.model_validate({**fields, "user": fields["user"] or ""})
    except ValidationError as exc:
        message = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        refusal = (422, "Not invited", f"{message}.")
        raise await auditing.refused(request, actor, "invitation.send", targets, refusal,
                                     detail) from exc  # fmt: skip
    if any("\x00" in (value or "") for value in fields.values()):
        refusal = (422, "Not invited", "A field holds a NUL character: retype it.")
        raise await auditing.refused(request, actor, "invitation.send", targets, refusal, detail)
    services = services_of(request)
    if services.inviter is None:
        raise ConsoleRefusalError(503, "Not invited", "Invitations are not set up here.")
    try:
        invited = await services.inviter.invite(asked.user, email=asked.email, phone=asked.sms)
    except ValueError as exc:  # neither an address nor a number
        refusal = (422, "Not invited", "Give an e-mail address and/or an SMS number to send "
                   "the link to.")  # fmt: skip
        raise await auditing.refused(request, actor, "invitation.send", targets, refusal,
                                     detail) from exc  # fmt: skip
    await auditing.record(request, actor, "invitation.send", targets, {
        **detail, "invitation_id": invited.invitation.invitation_id,  # never the link
        "delivered": {d.channel: d.ok for d in invited.deliveries},
    })  # fmt: skip
    log.info("console_invited", user=asked.user, by=actor.name)
    context = {
        "title": "Invitation sent",
        "invited": asked.user,
        "link": invited.link,
        "expires_at": invited.invitation.expires_at,
        "deliveries": invited.deliveries,
    }
    return render(request, "enrollment_link.html", context, status_code=201)


@router.post("/enrollment/link")
async def new_link(request: Request, actor: Inviter) -> Response:
    enrollment = _enrollment(services_of(request))
    url, expires_at = await enrollment.new_link()
    detail = {"expires_at": expires_at.isoformat(timespec="seconds")}  # never the link
    await auditing.record(request, actor, "enrollment.link", [], detail)
    context: dict[str, object] = {"title": "Enrollment link", "invited": None, "link": url,
                                  "expires_at": expires_at, "deliveries": []}  # fmt: skip
    return render(request, "enrollment_link.html", context, status_code=201)


@router.post("/enrollment/profile")
async def enrollment_profile(request: Request, actor: Inviter) -> Response:
    """Signed, with a fresh one-time challenge: as `orchardist enrollment-profile` writes."""
    profile = await _enrollment(services_of(request)).profile(signed=True)
    await auditing.record(request, actor, "enrollment.profile", [],
                          {"signed": True, "static_challenge": False})  # fmt: skip
    disposition = 'attachment; filename="orchardist-enroll.mobileconfig"'
    return Response(profile, media_type=PROFILE, headers={"Content-Disposition": disposition,
                                                          "Cache-Control": "no-store"})  # fmt: skip


@router.post("/enrollment/scep/approve")
async def approve(request: Request, actor: Approver) -> Response:
    transaction_id = await _transaction_id(request)
    try:
        cert = await services_of(request).approvals.approve(transaction_id)
    except NotPendingError as exc:
        raise await _not_pending(request, actor, "scep.approve", transaction_id, exc) from exc
    except ValueError as exc:
        refusal = (422, "Not approved", f"The CA refused the CSR, so the request was "
                   f"rejected: {exc}.")  # fmt: skip
        raise await auditing.refused(request, actor, "scep.approve", [transaction_id],
                                     refusal) from exc  # fmt: skip
    serial = f"{cert.serial_number:x}"
    await auditing.record(request, actor, "scep.approve", [transaction_id], {"serial": serial})
    return RedirectResponse(f"{PAGE}?done=approved", 303)


@router.post("/enrollment/scep/reject")
async def reject(request: Request, actor: Approver) -> Response:
    transaction_id = await _transaction_id(request)
    try:
        await services_of(request).approvals.reject(transaction_id)
    except NotPendingError as exc:
        raise await _not_pending(request, actor, "scep.reject", transaction_id, exc) from exc
    await auditing.record(request, actor, "scep.reject", [transaction_id])
    return RedirectResponse(f"{PAGE}?done=rejected", 303)


def _sign_in_url(services: Services) -> str | None:
    """The directory sign-in page users open on their device, when there is a directory."""
    if services.ota is None or services.ota.directory is None:
        return None
    return f"{services.settings.base_url}/enroll"


def _enrollment(services: Services) -> EnrollmentProfiles:
    if services.enrollment is None:
        raise ConsoleRefusalError(503, "Not available", "MDM is not configured on this server.")
    return services.enrollment


async def _transaction_id(request: Request) -> str:
    value = (await form_of(request)).get("transaction_id")
    return value if isinstance(value, str) else ""


async def _not_pending(
    request: Request, actor: Actor, action: str, transaction_id: str, exc: NotPendingError
) -> ConsoleRefusalError:
    reason = str(exc)
    message = f"{reason[:1].upper()}{reason[1:]}: reload the page to see what is waiting."
    return await auditing.refused(
        request, actor, action, [transaction_id], (409, "Nothing done", message)
    )
