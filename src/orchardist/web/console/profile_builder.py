"""/console/profiles/new: the profile builder (admins: profiles.edit) — Apple's iPhone
Configuration Utility in the browser.

The page is one form: the profile's identifier, name and organization, then one fieldset
per payload drawn from Apple's schema (`builder_widgets`), then "Add payload" (a payload
type from the list), "Check" and "Save". Every button posts the whole form back to
/console/profiles/new, which draws it again with the values kept — so all of it works
without JavaScript. With htmx, any change also posts the form to
/console/profiles/new/check, which answers only the problems (each with its key path) and
the XML preview, shown in place.

Save builds the profile exactly as Check does and stores it through the library as an
uploaded .mobileconfig is stored (`profiles.store`): the next version of its identifier,
or nothing when it is the latest version again; recorded as profile.upload.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Request, Response

from orchardist.accounts.permissions import Actor, Permission
from orchardist.profiles import envelope
from orchardist.profiles.library import ProfileRejectedError
from orchardist.web.console.builder_draft import (
    Checked,
    Draft,
    add_payload,
    check_draft,
    payload_choices,
    problem_anchor,
    problems_by_field,
    read_draft,
    remove_payload,
)
from orchardist.web.console.builder_widgets import payload_sections
from orchardist.web.console.forms import form_of
from orchardist.web.console.profiles import saved, store
from orchardist.web.console.session import page_router, require, services_of
from orchardist.web.console.templating import render

router = page_router()
Builder = Annotated[Actor, require(Permission.PROFILE_EDIT)]


@router.get("/profiles/new")
async def builder_page(request: Request, _: Builder) -> Response:
    return _page(request, Draft())


@router.post("/profiles/new")
async def builder_form(request: Request, actor: Builder) -> Response:
    """Add or remove a payload, check, or save: the form drawn again with its values, or
    (saved) the profile's page."""
    form = await form_of(request)
    draft, left_out = read_draft(form.multi_items())
    action = str(form.get("action") or "check")
    if action == "add":
        draft, refused = add_payload(draft, str(form.get("add_type") or ""))
        return _page(request, draft, left_out=left_out, message=refused)
    if action.startswith("remove-") and action[7:].isdigit():
        return _page(request, remove_payload(draft, int(action[7:])), left_out=left_out)
    checked = check_draft(draft)
    if action != "save":
        return _page(request, draft, checked=checked, left_out=left_out)
    if checked.profile is None or left_out:
        message = "Not saved: fix the problems below first. Nothing was stored."
        return _page(request, draft, checked=checked, left_out=left_out, message=message,
                     status=422)  # fmt: skip
    try:
        added = await store(services_of(request), actor, envelope.serialize(checked.profile))
    except ProfileRejectedError as exc:
        rejected = Checked(tuple(exc.problems), checked.preview, None)
        return _page(request, draft, checked=rejected, message="Not saved.", status=422)
    return saved(added)


@router.post("/profiles/new/check")
async def builder_check(request: Request, _: Builder) -> Response:
    """The problems and the preview only (htmx swaps them into the page as you type)."""
    draft, left_out = read_draft((await form_of(request)).multi_items())
    return render(request, "builder_check.html", _checked(check_draft(draft), left_out))


def _page(
    request: Request,
    draft: Draft,
    *,
    checked: Checked | None = None,
    left_out: list[str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    problems = problems_by_field(checked.problems if checked is not None else ())
    context = {
        "title": "New profile",
        "draft": draft,
        "sections": payload_sections(draft, problems),
        "header_problems": {
            name: problems.get(name, []) for name in ("identifier", "name", "organization")
        },
        "choices": payload_choices(),
        "message": message,
        **_checked(checked, left_out or []),
    }
    return render(request, "builder.html", context, status_code=status)


def _checked(checked: Checked | None, left_out: list[str]) -> dict[str, object]:
    listed = [] if checked is None else [(p, problem_anchor(p)) for p in checked.problems]
    return {"checked": checked, "problems": listed, "left_out": left_out}
