"""The authentication matrix (issue 15, R3), generated from the app's route table: every
device endpoint by every kind of identity and every /api/v1 route by every credential gets
exactly the status the tables below say, and a refused device never gets another device's
data. A route the tables do not name fails `test_the_tables_name_every_route`, and so does
an entry for a route that is gone.

Device identities are in auth_devices.py, credentials and requests in auth_api.py. One
server (and fleet) per backend serves the whole module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts

from orchardist.config import load_settings
from orchardist.web.app import create_app
from tests.db import backends
from tests.web.auth_api import CREDENTIALS, api_request, expected_status, make_credentials
from tests.web.auth_devices import (
    LINKS,
    Fleet,
    apple_device_ca,
    link_request,
    make_fleet,
    mdm_request,
    ota_request,
)
from tests.web.mdm_server import running
from tests.web.test_api_permissions import EXPECTED

pytestmark = pytest.mark.anyio
Cell = tuple[int, str]  # the status, and a phrase of the reason that must come with it
# 403, never 401, for an identity refused at /mdm: a device takes 401 as "unenroll".
MDM: dict[str, Cell | None] = {
    "none": (403, "no Mdm-Signature header"),
    "garbage": (403, "Mdm-Signature does not verify"),
    "stranger": (403, "not issued by a trusted CA"),
    "other_device": (403, "it belongs to device UDID-ATT"),
    "expired": (403, "the signer certificate expired"),
    "revoked": (403, "the identity certificate is revoked"),
    "unbound": (403, "it must Authenticate first"),
    "right": (200, ""),
}
OTA: dict[str, Cell | None] = {  # phase 3, signed by the SCEP identity
    "none": (403, "not a signed attributes message"),
    "garbage": (403, "not a signed attributes message"),
    "stranger": (403, "not signed by a device certificate we trust"),
    "other_device": (403, "issued to another device"),
    "expired": (403, "the signer certificate expired"),
    "revoked": (403, "the enrollment identity is revoked"),
    "unbound": (403, "phase 3 without the phase 2"),
    "right": (200, ""),
}
# A signed link carries no device identity: it is a capability for one path until it
# expires. There is nothing to revoke or bind, so those two kinds do not apply (None).
LINK: dict[str, Cell | None] = {
    "none": (403, "This link has no token"),
    "garbage": (403, "token is damaged"),
    "stranger": (403, "not one this server made"),
    "other_device": (403, "not one this server made"),
    "expired": (403, "This link has expired"),
    "revoked": None,
    "unbound": None,
    "right": (200, ""),
}
DEVICE: dict[tuple[str, str], dict[str, Cell | None]] = {
    ("PUT", "/mdm/checkin"): MDM,
    ("PUT", "/mdm/connect"): MDM,
    ("POST", "/enroll/ota"): OTA,
    **{("GET", path): LINK for path in LINKS},
}
# Routes outside this matrix, each with where its access is tested instead.
SCEP = "SCEP: the identity is the challenge or renewed certificate (tests/scep, test_scep_http)"
ENROLL_SITE = "browser: directory sign-in and one-time sessions (tests/enroll)"
CATALOG = "browser: the catalog's directory session (test_catalog.py)"
PUBLIC = "public by design"
ENROLL_ROUTES = [("GET", "/enroll"), ("POST", "/enroll"), ("POST", "/enroll/install"),
                 ("POST", "/enroll/decline"), ("GET", "/enroll/profile")]  # fmt: skip
CATALOG_ROUTES = [("GET", "/apps"), ("POST", "/apps"), ("POST", "/apps/sign-out"),
                  ("POST", "/apps/install"), ("GET", "/apps/catalog.css"),
                  ("GET", "/apps/catalog-icon.png")]  # fmt: skip
OTHER = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,  # for load balancers
    ("GET", "/metrics"): "optional bearer token (test_metrics.py)",
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    ("MOUNT", "/api/v1/docs/assets"): PUBLIC,
    **{(m, p): SCEP for m in ("GET", "POST") for p in ("/scep", "/scep/pkiclient.exe")},
    ("GET", "/mdm/enroll"): "a one-time enrollment link (test_mdm_http.py)",
    **dict.fromkeys(ENROLL_ROUTES, ENROLL_SITE),
    **dict.fromkeys(CATALOG_ROUTES, CATALOG),
}
CONSOLE = "/console"  # browser sessions, CSRF and roles: R4 (test_console_auth, _roles)
DEVICE_CELLS = [(route, identity) for route, row in DEVICE.items()
                for identity, status in row.items() if status is not None]  # fmt: skip


def _route_table(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) for every route the app answers, HEAD aside (it answers as GET)."""
    found = set()
    for context in iter_route_contexts(create_app(load_settings(tmp_path)).routes):
        path = context.path
        if not path or path.startswith(CONSOLE):
            continue
        methods = context.methods if context.methods is not None else {"MOUNT"}
        found |= {(method, path) for method in methods if method != "HEAD"}
    return found


def test_the_tables_name_every_route(tmp_path: Path) -> None:
    found = _route_table(tmp_path)
    tables = set(DEVICE) | set(EXPECTED) | set(OTHER)
    assert not found - tables, f"routes without an entry: {sorted(found - tables)}"
    assert not tables - found, f"entries for routes that are gone: {sorted(tables - found)}"
    assert not set(DEVICE) & set(OTHER)
    api_cells = len(EXPECTED) * len(CREDENTIALS)
    print(f"matrix: {len(DEVICE)} device endpoints, {len(DEVICE_CELLS)} cells; "
          f"{len(EXPECTED)} API routes x {len(CREDENTIALS)} credentials = {api_cells}")  # fmt: skip
    assert (len(DEVICE_CELLS), api_cells) == (6 * 8 - 3 * 2, len(EXPECTED) * 7)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=backends())
async def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fleet]:
    folder = tmp_path_factory.mktemp("auth-matrix")
    anchor, cert, key = apple_device_ca(folder)
    async with running(request.param, folder, ota_device_anchor_files=[anchor]) as server:
        yield await make_fleet(server, folder, (cert, key))


@pytest.fixture(scope="module")
async def credentials(fleet: Fleet) -> dict[str, dict[str, str]]:
    return await make_credentials(fleet)


@pytest.mark.parametrize(("route", "identity"), DEVICE_CELLS, ids=lambda v: str(v))
async def test_device_endpoint(fleet: Fleet, route: tuple[str, str], identity: str) -> None:
    path = route[1]
    if path.startswith("/mdm/"):
        answer = await mdm_request(fleet, path, identity)
    elif path == "/enroll/ota":
        answer = await ota_request(fleet, identity)
    else:
        answer = await link_request(fleet, path, identity)
    cell = DEVICE[route][identity]
    assert cell is not None
    assert answer.status_code == cell[0], answer.text
    assert cell[1] in answer.text
    assert fleet.attacker_command.encode() not in answer.content  # nobody asks as the attacker
    if identity != "right":
        assert fleet.victim_command.encode() not in answer.content
        assert answer.headers["content-type"].startswith("text/plain"), answer.headers
    elif path == "/mdm/connect":  # the victim gets its own command, and only that
        assert fleet.victim_command.encode() in answer.content


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
async def test_api_route(
    fleet: Fleet, credentials: dict[str, dict[str, str]], method: str, path: str
) -> None:
    wrong = []
    for credential in CREDENTIALS:
        answer = await api_request(fleet, method, path, credentials[credential])
        expected = expected_status(credential, EXPECTED[(method, path)])
        refused = answer.status_code in (401, 403)
        if (expected is None and refused) or (
            expected is not None and answer.status_code != expected
        ):
            wrong.append(f"{credential}: {answer.status_code} {answer.text[:120]}")
    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)
