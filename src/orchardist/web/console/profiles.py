"""/console/profiles: the profile library, a profile's versions, assignments and per-device
status; uploading, deleting and downloading the contents (admins: profiles.edit,
profiles.contents). Assigning is in `profile_assignments`, the builder in
`profile_builder`.

The same library and the same read functions as /api/v1/profiles, recorded in the audit
log under the API's action names (profile.upload, profile.assign, profile.unassign,
profile.delete) with the same targets. Pages other than the download never show a
profile's contents: they hold Wi-Fi passwords and keys.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

import structlog
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from orchardist.accounts.permissions import Actor, Permission
from orchardist.audit import Actor as AuditActor
from orchardist.audit import Outcome
from orchardist.profiles.forms import payload_forms
from orchardist.profiles.library import Added, ProfileRejectedError
from orchardist.web.api.profiles import (
    MAX_PROFILE_BYTES,
    device_states,
    library_of,
    profile_detail,
    profile_summaries,
    reconciled,
)
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
Editor = Annotated[Actor, require(Permission.PROFILE_EDIT)]
ContentReader = Annotated[Actor, require(Permission.PROFILE_CONTENTS)]
PAGE = "/console/profiles"
STATUS_ROWS = 500
# While installs are pending the status table asks again every 5 s, 60 times at most:
# an open tab must not keep a session alive for ever.
POLLS = 60
NOTICES = {
    "saved": "Saved as version {version}. Devices it is assigned to get it now.",
    "unchanged": "Not stored: version {version} has this content already.",
    "assigned": "Assigned: {installs} install(s) queued.",
    "unassigned": "Unassigned: {removals} removal(s) queued.",
    "deleted": "Deleted: {removals} removal(s) queued.",
}


@router.get("/profiles")
async def library_page(request: Request, user: CurrentAccount) -> Response:
    return await _library(request)


async def _library(
    request: Request, problems: list[str] | None = None, status: int = 200
) -> Response:
    profiles = await profile_summaries(services_of(request).storage)
    return render(
        request,
        "profiles.html",
        {
            "title": "Profiles",
            "notice": _notice(request),
            "problems": problems or [],
            "profiles": profiles,
            "titles": _titles(),
        },
        status_code=status,
    )


@router.post("/profiles/upload")
async def upload(request: Request, actor: Editor) -> Response:
    given = (await form_of(request)).get("profile")
    if not isinstance(given, UploadFile) or not given.filename:
        raise ConsoleRefusalError(422, "Nothing uploaded", "Choose a .mobileconfig file first.")
    data = await given.read(MAX_PROFILE_BYTES + 1)
    if len(data) > MAX_PROFILE_BYTES:
        raise ConsoleRefusalError(
            413,
            "Not uploaded",
            f"A profile may be at most {MAX_PROFILE_BYTES // (1024 * 1024)} MiB.",
        )
    try:
        added = await store(services_of(request), actor, data)
    except ProfileRejectedError as exc:
        return await _library(request, exc.problems, 422)
    return saved(added)


async def store(services: Services, actor: Actor, data: bytes) -> Added:
    """A .mobileconfig into the library as POST /api/v1/profiles stores it: the next
    version (nothing when the latest has this content), installed where it is assigned,
    recorded as profile.upload — never with its contents."""
    library = library_of(services)
    try:
        added = await library.upload(data)
    except ProfileRejectedError as exc:
        reason = f"refused by Apple's schema: {len(exc.problems)} problem(s)"
        await services.audit.record(
            _who(actor), "profile.upload", [], Outcome.FAILED, reason=reason
        )
        raise
    if not added.unchanged:
        reconciled(await library.reconcile(identifier=added.version.identifier), services)
    stored = added.version
    await services.audit.record(
        _who(actor),
        "profile.upload",
        [stored.identifier],
        detail={
            "version": stored.version,
            "unchanged": added.unchanged,
            "payload_types": list(stored.payload_types),
        },
    )
    log.info(
        "console_profile_stored",
        identifier=stored.identifier,
        version=stored.version,
        unchanged=added.unchanged,
        by=actor.name,
    )
    return added


def saved(added: Added) -> Response:
    done = "unchanged" if added.unchanged else "saved"
    return back_to_profile(added.version.identifier, done, version=added.version.version)


@router.get("/profiles/{identifier}")
async def profile_page(request: Request, identifier: str, user: CurrentAccount) -> Response:
    storage = services_of(request).storage
    detail = await profile_detail(storage, identifier)
    if detail is None:
        raise ConsoleRefusalError(404, "No such profile", f"There is no profile {identifier}.")
    context = {
        "title": detail.display_name,
        "profile": detail,
        "titles": _titles(),
        "groups": sorted(await storage.groups()),
        "notice": _notice(request),
        **await _status(services_of(request), identifier, 0),
    }
    return render(request, "profile.html", context)


@router.get("/profiles/{identifier}/status")
async def status_fragment(request: Request, identifier: str, user: CurrentAccount) -> Response:
    """The per-device table alone, for htmx to refresh while installs are pending."""
    given = request.query_params.get("poll", "")
    poll = int(given) if given.isdigit() and len(given) < 4 else POLLS
    context = {
        "profile": {"identifier": identifier},
        **await _status(services_of(request), identifier, poll),
    }
    return render(request, "profile_status.html", context)


async def _status(services: Services, identifier: str, poll: int) -> dict[str, object]:
    states = await device_states(services.storage, identifier, datetime.now(UTC))
    counts: dict[str, int] = {}
    for state in states:
        counts[state.state] = counts.get(state.state, 0) + 1
    waiting = any(s.state in ("pending", "removing") and not s.overdue for s in states)
    return {
        "states": states[:STATUS_ROWS],
        "state_counts": sorted(counts.items()),
        "hidden_rows": max(0, len(states) - STATUS_ROWS),
        "next_poll": poll + 1 if waiting and poll < POLLS else None,
    }


@router.get("/profiles/{identifier}/content")
async def content(request: Request, identifier: str, _: ContentReader) -> Response:
    """A version's .mobileconfig as stored (unsigned, passwords included): admins only."""
    given = request.query_params.get("version", "")
    version = int(given) if given.isdigit() and len(given) < 10 else None
    storage = services_of(request).storage
    stored = await storage.profile_version(identifier, version)
    if stored is None or await storage.get_profile(identifier) is None:
        raise ConsoleRefusalError(
            404, "No such profile", f"There is no such version of {identifier}."
        )
    filename = f"{re.sub(r'[^A-Za-z0-9._-]', '_', identifier)}-v{stored.version}.mobileconfig"
    return Response(
        stored.body,
        media_type="application/x-apple-aspen-config",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/profiles/{identifier}/delete")
async def delete(request: Request, identifier: str, actor: Editor) -> Response:
    services = services_of(request)
    typed = str((await form_of(request)).get("confirm") or "").strip()
    if typed != identifier:
        await services.audit.record(
            _who(actor),
            "profile.delete",
            [identifier],
            Outcome.FAILED,
            reason="the identifier was not typed to confirm",
        )
        raise ConsoleRefusalError(
            422,
            "Not deleted",
            "To delete this profile, type its "
            f"identifier exactly: {identifier}. Nothing was changed.",
        )
    try:
        done = await library_of(services).delete(identifier)
    except LookupError as exc:
        raise ConsoleRefusalError(
            404, "No such profile", f"There is no profile {identifier}."
        ) from exc
    result = reconciled(done, services)
    await services.audit.record(_who(actor), "profile.delete", [identifier])
    log.info("console_profile_deleted", identifier=identifier, by=actor.name)
    return RedirectResponse(f"{PAGE}?done=deleted&removals={result.removals}", 303)


def back_to_profile(identifier: str, done: str, **figures: int) -> Response:
    """To the profile's page, its notice saying what was done."""
    query = "&".join(f"{k}={v}" for k, v in {"done": done, **figures}.items())
    return RedirectResponse(f"{PAGE}/{quote(identifier, safe='')}?{query}", 303)


def _notice(request: Request) -> str | None:
    """The message a redirect asked for: fixed text with numbers only (never text from
    the query string)."""
    params = request.query_params
    template = NOTICES.get(params.get("done", ""))
    if template is None:
        return None
    figures = {
        k: int(v) if (v := params.get(k, "0")).isdigit() and len(v) < 10 else 0
        for k in ("version", "installs", "removals")
    }
    return template.format(**figures)


def _titles() -> dict[str, str]:
    return {kind: form.title for kind, form in payload_forms().items()}


def _who(actor: Actor) -> AuditActor:
    return AuditActor.account(actor.name)
