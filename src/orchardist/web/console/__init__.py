"""The admin console under /console: server-rendered pages (Jinja2, htmx served by the
app), signed in with a local account or through the directory, every action checked by
the same permission table as the API.

Layout: one module per page group (`dashboard`, `accounts`, …), its templates in
`templates/` extending `base.html`; `mount.install(app)` puts them on the app (a new page
module adds its router to `mount.PAGES`); `login` signs in and out; `static` serves the
stylesheet and htmx; `headers` adds the Content-Security-Policy and friends.

What a page module uses (from `orchardist.web.console.session` and `.templating`):

- `router = page_router()`: an APIRouter under /console whose every route passes `guard`
  first. For POST/PUT/PATCH/DELETE, `guard` needs a live session (else 303 to the sign-in
  page with "your session has ended, nothing was changed", and back to the form's page
  afterwards) and the session's CSRF token (else a 403 page); a handler cannot forget it.
- `user: CurrentAccount` (`current_account`): the signed-in `Actor` (name, role: a
  `Role`, kind: "account" or "directory"); without a session, a redirect to sign-in.
- `actor: Annotated[Actor, require(Permission.LOCK)]`: the signed-in Actor when its role
  has the permission (asked through `Services.gate`, exactly as /api/v1 asks; a refusal
  goes to the gate's `on_denied`, the audit log), else a 403 page naming the role needed.
- `render(request, "page.html", {...})`: the page, with `user`, `csrf_token` and `path` in
  its context. Autoescaping is always on; undefined names raise.
- In templates: `{{ csrf_field() }}` inside every `<form method="post">`; htmx requests
  carry the token as X-CSRF-Token (set on <body>); `{% if may("devices.lock") %}` to show
  only what the role may do (the handler refuses it regardless).
- `form_of(request)` (`.forms`): the posted fields (multipart uploads too), read once.
- `raise ConsoleRefusalError(status, title, message)`: a refusal page, nothing done.

The Content-Security-Policy allows only this site's scripts, styles and images: no inline
`<script>` or `style=""` attributes, no CDN (see `headers`).
"""
