"""The API side of the authentication matrix (test_auth_matrix.py): the credentials, and a
minimal request for any /api/v1 route, made from its method and path template alone so
that a route added later gets one too.

Reads name things that exist (the victim, its command, a stored app) so that a sufficient
role sees a 200; writes name things that do not, so that an admin's DELETE or retire in
one cell changes nothing another cell (or the device half of the matrix) relies on: a 404
or 422 is as good an "allowed" as a 200, as long as it is not 401 or 403.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from orchardist.accounts.permissions import RULES, Permission, Role
from orchardist.tokens import TOKEN_PREFIX, create_api_token
from tests.web.auth_devices import Fleet

CREDENTIALS = ("no token", "wrong", "revoked", "expired", *(role.value for role in Role))
_REFUSED = {"no token", "wrong", "revoked", "expired"}


async def make_credentials(fleet: Fleet) -> dict[str, dict[str, str]]:
    """Headers for each credential; the revoked and expired tokens are admins' (the most a
    token could do, refused all the same)."""
    store, now = fleet.server.services.storage, datetime.now(UTC)
    tokens = {role.value: await create_api_token(store, f"m-{role.value}", role.value)
              for role in Role}  # fmt: skip
    tokens["revoked"] = await create_api_token(store, "m-revoked", "admin")
    assert await store.revoke_api_token("m-revoked", now)
    tokens["expired"] = await create_api_token(
        store, "m-expired", "admin", expires_at=now - timedelta(minutes=1)
    )
    tokens["wrong"] = TOKEN_PREFIX + secrets.token_urlsafe(32)
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    return {"no token": {}, **headers}


def expected_status(credential: str, permission: Permission) -> int | None:
    """401, 403, or None for "anything but those"."""
    if credential in _REFUSED:
        return 401
    return None if Role(credential).rank >= RULES[permission].role.rank else 403


def _fill(path: str, method: str, fleet: Fleet) -> str:
    reading = method == "GET"
    values = {
        "udid": fleet.victim.udid if reading else "UDID-MATRIX-NONE",
        "command_uuid": fleet.victim_command if reading else str(uuid.uuid4()).upper(),
        "bundle_id": fleet.app.bundle_id if reading else "com.example.matrix-none",
        "identifier": "com.example.matrix-none",
        "name": "matrix-none",
        "uuid": str(uuid.uuid4()),
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in values, f"{method} {path}: give {{{name}}} a value in auth_api._fill"
        return values[name]

    return re.sub(r"\{([^}]+)\}", value, path)


async def api_request(
    fleet: Fleet, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    url = _fill(path, method, fleet)
    if method in ("GET", "DELETE") and not url.endswith("/assignments"):
        return await fleet.server.http.request(method, url, headers=headers)
    # An empty JSON object: the route's own validation (422) answers after the permission.
    return await fleet.server.http.request(method, url, json={}, headers=headers)
