"""The app catalog's pages: phone-sized like the enrollment site's (its style, plus a few
rules for the list), readable without script, every value shown escaped. Styles come
from /apps/catalog.css rather than inline, so the pages' Content-Security-Policy can
refuse inline styles and scripts altogether."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from orchardist.web.enroll_pages import STYLE as ENROLL_STYLE
from orchardist.web.enroll_pages import credentials

STYLE = (
    ENROLL_STYLE
    + """
header{display:flex;justify-content:space-between;align-items:center;gap:1rem}
header form button{width:auto;margin:0;padding:.45rem .8rem;font-size:15px}
.app{display:flex;gap:.9rem;align-items:flex-start}
.app img,.app .noicon{width:60px;height:60px;border-radius:13px;flex:none;background:#e5e5ea}
.app h2{font-size:1.1rem;margin:.1rem 0}
.meta{color:#6c6c70;font-size:.9rem;margin:0}
.description{white-space:pre-line;margin:.6rem 0 0}
.notice{background:#e5f6ea;color:#14532d;border-radius:10px;padding:.7rem .9rem}
a.install{display:block;text-align:center;text-decoration:none;font-weight:600;padding:.8rem;
border-radius:12px;margin-top:1rem;background:#007aff;color:#fff}
"""
)


@dataclass(frozen=True)
class ListedApp:
    name: str
    bundle_id: str
    version: str  # "2.1 (57)"
    size: int  # bytes
    description: str
    icon_src: str | None  # a path on this site, with its signed token
    install_link: str  # itms-services://…


def page(title: str, body: str, organization: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        "<meta name=apple-mobile-web-app-capable content=yes>"
        '<link rel=apple-touch-icon href="/apps/catalog-icon.png">'
        '<link rel=icon href="/apps/catalog-icon.png">'
        '<link rel=stylesheet href="/apps/catalog.css">'
        f"<title>{escape(title)}</title></head><body><main>"
        f"<small>{escape(organization)}</small>{body}</main></body></html>"
    )


def sign_in(
    title: str, organization: str, error: str | None = None, user: str = "", *, ready: bool = True
) -> str:
    if not ready:
        body = (
            f"<h1>{escape(title)}</h1><p class=error role=alert>The app catalog needs a "
            "directory sign-in, which is not set up on this server. Ask IT.</p>"
        )
        return page(title, body, organization)
    problem = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    return page(
        title,
        f"""<h1>{escape(title)}</h1>{problem}<form method=post action="/apps" class=card>
<p>Sign in with your work account to see the apps {escape(organization)} offers you.</p>
{credentials(user)}</form>""",
        organization,
    )


def catalog(
    title: str,
    organization: str,
    user: str,
    apps: Sequence[ListedApp],
    form_token: str,
    *,
    device: str | None = None,
    notice: str | None = None,
) -> str:
    """The list; with `device` (the name of the user's one enrolled device) each app also
    offers a managed install on it."""
    said = f"<p class=notice role=status>{escape(notice)}</p>" if notice else ""
    listed = "".join(_app(app, form_token, device) for app in apps) or (
        "<div class=card><p>No apps are offered to you yet.</p><p><small>Apps are offered "
        "to directory groups: if you expected one here, ask IT.</small></p></div>"
    )
    return page(
        title,
        f"""<header><h1>{escape(title)}</h1><form method=post action="/apps/sign-out">
<input type=hidden name=form_token value="{escape(form_token)}">
<button type=submit class=secondary>Sign out</button></form></header>
<p class=meta>Signed in as <b>{escape(user)}</b></p>{said}{listed}""",
        organization,
    )


def _app(app: ListedApp, form_token: str, device: str | None) -> str:
    icon = (
        f'<img src="{escape(app.icon_src)}" alt="" width=60 height=60>'
        if app.icon_src is not None
        else "<div class=noicon></div>"
    )
    description = f"<p class=description>{escape(app.description)}</p>" if app.description else ""
    return f"""<section class=card aria-label="{escape(app.name)}"><div class=app>{icon}<div>
<h2>{escape(app.name)}</h2>
<p class=meta>Version {escape(app.version)} · {readable_size(app.size)}</p></div></div>{description}
<a class=install href="{escape(app.install_link)}">Install {escape(app.name)}</a>
{_managed(app, form_token, device)}</section>"""


def _managed(app: ListedApp, form_token: str, device: str | None) -> str:
    if device is None:
        return ""
    return f"""<form method=post action="/apps/install">
<input type=hidden name=form_token value="{escape(form_token)}">
<input type=hidden name=bundle_id value="{escape(app.bundle_id)}">
<button type=submit class=secondary>Install on {escape(device)} (managed)</button></form>"""


def refused(title: str, organization: str, message: str) -> str:
    return page(
        title,
        f"<h1>{escape(title)}</h1><p class=error role=alert>{escape(message)}</p>"
        '<p><a href="/apps">Back to the catalog</a></p>',
        organization,
    )


def readable_size(size: int) -> str:
    """1536000 → "1.5 MB" (decimal units, as iOS shows sizes)."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"
