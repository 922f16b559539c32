"""The console's Jinja2 environment: every page is a template in `templates/` extending
`base.html`, rendered with `render(request, name, context)`.

Autoescaping is on for every template, whatever its name: a device name such as
`<script>"x"</script>` prints as text. Undefined variables raise (StrictUndefined), so a
misspelt name fails the page's test instead of printing nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from orchardist.accounts.permissions import Permission, allowed
from orchardist.web.console.session import CSRF_FIELD, session_of

NAV = (
    ("Dashboard", "/console"),
    ("Devices", "/console/devices"),
    ("Commands", "/console/commands"),
    ("Profiles", "/console/profiles"),
    ("Groups", "/console/groups"),
    ("Enrollment", "/console/enrollment"),
    ("Push certificate", "/console/pushcert"),
    ("Accounts", "/console/accounts"),
    ("Audit", "/console/audit"),
)


@pass_context
def csrf_field(context: Context) -> Markup:
    """The hidden field every state-changing form carries: `{{ csrf_field() }}`."""
    token = context.get("csrf_token") or ""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


@pass_context
def may(context: Context, permission: str) -> bool:
    """Whether the signed-in account may do this: `{% if may("devices.lock") %}`. Templates
    hide what a role may not do; the handlers refuse it regardless."""
    user = context.get("user")
    return user is not None and allowed(user.role, Permission(permission))


environment = Environment(
    loader=PackageLoader("orchardist.web.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(csrf_field=csrf_field, may=may, nav=NAV)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The page, with `user` (the signed-in Actor or None), `csrf_token` and `path` in its
    context besides `context`."""
    session = session_of(request)
    values = {
        "user": session.actor if session is not None else None,
        "csrf_token": session.csrf_token if session is not None else "",
        "path": request.url.path,
        "title": "",
        **(context or {}),
    }
    html = environment.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
