"""GET /api/v1/commands and /commands/{uuid}/targets paged by position: the body stays a
JSON list, `Link: <…>; rel="next"` while more follow and not on the last page, every row
once across pages even while rows are added; commands to a group's enrolled members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from orchardist.storage import NewCommand
from orchardist.storage.sql.repositories import SqlStorage
from orchardist.storage.sql.tables import command_targets, enrollments
from orchardist.tokens import create_api_token
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)


async def _admin(server: Server) -> dict[str, str]:
    token = await create_api_token(server.services.storage, "lists", "admin")
    return {"Authorization": f"Bearer {token}"}


def _storage(server: Server) -> SqlStorage:
    storage = server.services.storage
    assert isinstance(storage, SqlStorage)
    return storage


async def _fleet(server: Server, udids: list[str], *, enrolled: bool = True) -> None:
    rows = [
        {"device_id": udid, "topic": "com.apple.mgmt.test", "identity_sha256": "a" * 64,
         "enrolled": enrolled, "authenticated_at": NOW - timedelta(days=1)}
        for udid in udids
    ]  # fmt: skip
    await _storage(server).database.write(lambda conn: conn.execute(insert(enrollments), rows))


async def _pages(
    server: Server, url: str, headers: dict[str, str], between: object = None
) -> list[httpx.Response]:
    """Every page from `url` on, following Link; `between()` runs after each page."""
    answers = []
    while True:
        answer = await server.http.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        assert isinstance(answer.json(), list)
        answers.append(answer)
        link = answer.headers.get("link")
        if link is None:
            return answers
        assert link.endswith('; rel="next"')
        assert answer.headers["x-next-cursor"] in link
        url = link.split(">")[0].lstrip("<")
        if callable(between):
            await between()


async def test_targets_page_by_udid_while_targets_are_added(server: Server) -> None:
    admin = await _admin(server)
    udids = [f"UDID-{n:03}" for n in range(0, 42, 2)]  # 21: three full pages of 7
    await _fleet(server, udids)
    body = {"request_type": "ProfileList", "targets": {"all": True}}
    queued = await server.http.post("/api/v1/commands", json=body, headers=admin)
    uuid = queued.json()["command_uuid"]
    assert queued.json()["targets"] == 21
    added = iter(range(1, 42, 2))  # odd UDIDs, on either side of each page's end

    async def add_two() -> None:
        rows = [{"command_uuid": uuid, "device_id": f"UDID-{next(added):03}", "status": "queued",
                 "priority": 0, "created_at": NOW} for _ in range(2)]  # fmt: skip

        def work(conn: Connection) -> None:
            conn.execute(insert(command_targets), rows)

        await _storage(server).database.write(work)

    url = f"/api/v1/commands/{uuid}/targets?limit=7"
    pages = await _pages(server, url, admin, add_two)
    seen = [target["udid"] for page in pages for target in page.json()]
    assert len(seen) == len(set(seen))  # no target twice
    assert set(udids) <= set(seen)  # none of those there from the start missed
    assert seen == sorted(seen)
    assert "link" not in pages[-1].headers


async def test_an_exact_last_page_has_no_link(server: Server) -> None:
    admin = await _admin(server)
    await _fleet(server, [f"UDID-{n}" for n in range(6)])
    body = {"request_type": "ProfileList", "targets": {"all": True}}
    uuid = (await server.http.post("/api/v1/commands", json=body, headers=admin)).json()[
        "command_uuid"
    ]
    pages = await _pages(server, f"/api/v1/commands/{uuid}/targets?limit=3", admin)
    assert [len(page.json()) for page in pages] == [3, 3]
    shown = await server.http.get(f"/api/v1/commands/{uuid}?limit=6", headers=admin)
    assert len(shown.json()["targets"]) == 6
    assert "link" not in shown.headers


async def test_commands_newest_first_while_commands_are_queued(server: Server) -> None:
    admin = await _admin(server)
    storage = _storage(server)
    for n in range(12):
        await storage.enqueue(NewCommand(f"CMD-{n:02}", "DeviceInformation", b"<plist/>"), [],
                              NOW + timedelta(seconds=n))  # fmt: skip
    later = iter(range(100, 200))

    async def queue_one() -> None:
        uuid = f"NEW-{next(later)}"
        await storage.enqueue(NewCommand(uuid, "DeviceLock", b"<plist/>"), [], datetime.now(UTC))

    pages = await _pages(server, "/api/v1/commands?limit=5", admin, queue_one)
    assert [len(page.json()) for page in pages] == [5, 5, 2]
    seen = [command["command_uuid"] for page in pages for command in page.json()]
    assert seen == [f"CMD-{n:02}" for n in reversed(range(12))]
    assert set(pages[0].json()[0]["counts"]) >= {"queued", "acknowledged"}


async def test_a_cursor_not_from_the_list_is_422(server: Server) -> None:
    admin = await _admin(server)
    for url in ("/api/v1/commands?cursor=nope", "/api/v1/commands/X/targets?cursor=e30"):
        answer = await server.http.get(url, headers=admin)
        assert answer.status_code == 422
        assert "not a cursor from this list" in answer.text
    gone = await server.http.get("/api/v1/commands/NONE/targets", headers=admin)
    assert gone.status_code == 404


async def test_a_command_to_a_group_reaches_its_enrolled_members(server: Server) -> None:
    admin = await _admin(server)
    await _fleet(server, ["IN-1", "IN-2", "OUT-1"])
    await _fleet(server, ["IN-GONE"], enrolled=False)
    group = {"devices": ["IN-1", "IN-2", "IN-GONE"]}
    assert (await server.http.put("/api/v1/groups/sales", json=group, headers=admin)).is_success
    body = {"request_type": "ProfileList", "targets": {"group": "sales"}}
    queued = await server.http.post("/api/v1/commands", json=body, headers=admin)
    assert (queued.status_code, queued.json()["targets"]) == (201, 2)
    uuid = queued.json()["command_uuid"]
    targets = await server.http.get(f"/api/v1/commands/{uuid}/targets", headers=admin)
    assert [t["udid"] for t in targets.json()] == ["IN-1", "IN-2"]
    audit = (await server.http.get("/api/v1/audit?action=command.queue", headers=admin)).json()
    assert audit[0]["targets"] == ["group:sales"]
    body["targets"] = {"group": "nobody"}
    refused = await server.http.post("/api/v1/commands", json=body, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "targets"]
    assert "no group 'nobody'" in refused.json()["detail"][0]["msg"]
