"""API requests that once answered 500 (issue 10): out-of-range query integers, JSON
numbers Python reads as infinity, bodies that are not UTF-8. Each is now a 422 naming the
field, with an answer that is valid JSON."""

from __future__ import annotations

import json

import pytest

from orchardist.tokens import create_api_token
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio


async def _admin(server: Server) -> dict[str, str]:
    token = await create_api_token(server.services.storage, "bad-api-input", "admin")
    return {"Authorization": f"Bearer {token}"}


async def test_a_page_size_past_64_bits_is_a_422(server: Server) -> None:
    """Command targets page by cursor since issue 16 (no offset left to overflow); the
    page size is still a query integer that must stay in range."""
    admin = await _admin(server)
    device = await server.device("UDID-PAGE", 130)
    await server.enroll(device)
    command_uuid = await server.queue("DeviceLock", {}, device)
    path = f"/api/v1/commands/{command_uuid}"
    for limit in (2**64, 2**63, 10_001):
        refused = await server.http.get(path, params={"limit": limit}, headers=admin)
        assert refused.status_code == 422, limit
        assert refused.json()["detail"][0]["loc"] == ["query", "limit"]
    none = await server.http.get(path, params={"limit": 0}, headers=admin)
    assert (none.status_code, none.json()["targets"]) == (200, [])
    assert sum(none.json()["counts"].values()) == 1


@pytest.mark.parametrize(
    ("number", "echoed"), [("1e999", "inf"), ("-1e999", "-inf"), ("NaN", "nan")]
)
async def test_a_non_finite_priority_is_a_422(server: Server, number: str, echoed: str) -> None:
    admin = await _admin(server)
    body = f'{{"request_type": "DeviceLock", "targets": {{"all": true}}, "priority": {number}}}'
    response = await server.http.post(
        "/api/v1/commands",
        content=body.encode(),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    (error,) = json.loads(response.content)["detail"]  # strict JSON: no bare NaN or Infinity
    assert (error["loc"], error["input"]) == (["body", "priority"], echoed)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream"])
async def test_a_body_that_is_not_utf8_is_a_422(server: Server, content_type: str | None) -> None:
    admin = await _admin(server)
    headers = admin if content_type is None else {**admin, "Content-Type": content_type}
    body = b'\xff\xfe{"request_type": "DeviceLock"}'
    response = await server.http.post("/api/v1/commands", content=body, headers=headers)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]
    assert error["input"] == body.decode("utf-8", "replace")


async def test_a_lone_surrogate_in_json_is_a_422(server: Server) -> None:
    admin = await _admin(server)
    body = b'{"request_type": "DeviceLock", "targets": "\\ud800"}'  # echoed as the input
    response = await server.http.post(
        "/api/v1/commands", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert (error["loc"][:2], error["input"]) == (["body", "targets"], "?")  # "?": replaced
