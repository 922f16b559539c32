"""The enrollment site's pages: small, readable on a phone, no script needed. Every value
shown is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

STYLE = """
body{font:17px/1.45 -apple-system,system-ui,sans-serif;margin:0;background:#f2f2f7;color:#1c1c1e}
main{max-width:30rem;margin:0 auto;padding:1.5rem 1.25rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
.card{background:#fff;border-radius:14px;padding:1rem 1.1rem;margin:1rem 0}
label{display:block;font-weight:600;margin:.8rem 0 .3rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;font-size:17px;
padding:.7rem;border:1px solid #c7c7cc;border-radius:10px}
button{width:100%;font-size:17px;font-weight:600;padding:.8rem;border:0;border-radius:12px;
margin-top:1rem;background:#007aff;color:#fff}
button.secondary{background:#e5e5ea;color:#1c1c1e}
.error{background:#ffe5e5;color:#a00;border-radius:10px;padding:.7rem .9rem}
ul{padding-left:1.2rem}li{margin:.25rem 0}small{color:#6c6c70}
"""


def page(title: str, body: str, organization: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<small>{escape(organization)}</small><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def sign_in(organization: str, error: str | None = None, user: str = "") -> str:
    problem = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    return page(
        "Enroll this device",
        f"""{problem}<form method=post action="/enroll" class=card>
<p>Sign in with your work account to set up this iPhone or iPad.</p>
{credentials(user)}</form>""",
        organization,
    )


def credentials(user: str) -> str:
    """The sign-in form's fields and button (the app catalog's form has the same)."""
    return f"""<label for=user>User name or e-mail</label>
<input id=user name=user type=text autocomplete=username autocapitalize=none
 autocorrect=off value="{escape(user)}" required>
<label for=password>Password</label>
<input id=password name=password type=password autocomplete=current-password required>
<button type=submit>Sign in</button>"""


def confirm(organization: str, name: str, token: str, profiles: Sequence[str]) -> str:
    extra = "".join(f"<li>{escape(p)}</li>" for p in profiles)
    return page(
        "Review and install",
        f"""<div class=card><p>Signed in as <b>{escape(name)}</b>.</p>
<p>This will install:</p><ul><li>{escape(organization)}'s certificate authority</li>
<li>a device identity certificate</li><li>device management</li>{extra}</ul></div>
<div class=card><p><b>{escape(organization)} will be able to</b> see this device's model,
serial number, OS version, installed apps and profiles; install and remove settings and
apps it provides; lock the device, clear its passcode, and erase it.</p>
<p><b>It cannot see</b> your messages, mail, photos, browsing or location.</p></div>
<form method=post action="/enroll/install"><input type=hidden name=session value="{escape(token)}">
<button type=submit>Install</button></form>
<form method=post action="/enroll/decline"><input type=hidden name=session value="{escape(token)}">
<button type=submit class=secondary>Decline</button></form>""",
        organization,
    )


def done(organization: str, profile_url: str) -> str:
    return page(
        "Almost done",
        f"""<meta http-equiv=refresh content="1;url={escape(profile_url)}">
<div class=card><p>Your device is downloading the enrollment profile.</p><ol>
<li>Tap <b>Allow</b> when asked to download a configuration profile.</li>
<li>Open <b>Settings</b>, tap <b>Profile Downloaded</b>, then <b>Install</b>.</li>
<li>The device identifies itself and enrolls; nothing else to do.</li></ol>
<p><a href="{escape(profile_url)}">Download the profile again</a> (works once).</p></div>""",
        organization,
    )


def declined(organization: str) -> str:
    return page(
        "Nothing was installed",
        "<div class=card><p>This device was not enrolled and nothing was changed.</p>"
        '<p><a href="/enroll">Start again</a></p></div>',
        organization,
    )


def refused(organization: str, reason: str) -> str:
    return page(
        "This link no longer works",
        f'<p class=error role=alert>{escape(reason)}</p><p><a href="/enroll">Sign in again</a></p>',
        organization,
    )
