"""The in-process server driven from synchronous code, for Hypothesis: its event loop runs
in a thread (an anyio blocking portal), and each call waits for its answer there."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from orchardist.tokens import create_api_token
from tests.web.mdm_server import Device, Server, running

T = TypeVar("T")


@dataclass
class Live:
    portal: BlockingPortal
    server: Server
    admin: dict[str, str]  # an admin's Authorization header
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (path, status)
    tried: set[tuple[str, str]] = field(default_factory=set)  # (method, route template)

    def call(self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return self.portal.call(functools.partial(function, *args, **kwargs))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.call(self.server.http.request, method, url, **kwargs)
        self.answers[(url.split("?")[0], response.status_code)] += 1
        return response

    def enrolled(self, udid: str, index: int) -> Device:
        device = self.call(self.server.device, udid, index)
        self.call(self.server.enroll, device)
        return device

    def assert_device_readable(self, udid: str) -> None:
        """The API still answers for this device: what it sent broke nothing stored."""
        for path in (f"/api/v1/devices/{udid}", f"/api/v1/devices/{udid}/commands"):
            response = self.request("GET", path, headers=self.admin)
            assert response.status_code == 200, (path, response.text[:300])


@contextmanager
def live(backend: str, tmp_path: Path) -> Iterator[Live]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running(backend, tmp_path)) as server,
    ):
        token = portal.call(create_api_token, server.services.storage, "mutations", "admin")
        yield Live(portal, server, {"Authorization": f"Bearer {token}"})
