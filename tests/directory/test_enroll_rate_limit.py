"""/enroll's sign-in rate limit through a real slapd: attempts (right or wrong) count per
name and per client address; over either limit the page answers 429 with Retry-After and
says when to try again, the right password included; the limit lifts after the window (a
clock the test moves); the client address is the one a trusted proxy forwards, never a
header from anyone else; and the directory's own lockout (a password policy locking after
its own failures) still refuses after ours lets the attempt through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import ldap
import ldap.modlist
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from orchardist.config import DirectorySettings
from orchardist.web.app import create_app
from tests.directory.slapd import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    BASE,
    PASSWORDS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
)
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio
WINDOW = timedelta(minutes=15)
LIMITS = {"sign_in_attempts_per_user": 3, "sign_in_attempts_per_address": 4,
          "sign_in_window_minutes": 15}  # fmt: skip
DAVE = "dave-password"  # locked by the directory after 2 wrong passwords


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2030, 1, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def dave(slapd: Slapd) -> str:
    """A user under a password policy of the directory's own: two failures lock him."""
    admin = ldap.initialize(slapd.url)
    admin.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
    policy = f"cn=lock-after-two,ou=services,{BASE}"
    admin.add_s(policy, ldap.modlist.addModlist({
        "objectClass": [b"organizationalRole", b"pwdPolicy"], "cn": [b"lock-after-two"],
        "pwdAttribute": [b"userPassword"], "pwdLockout": [b"TRUE"], "pwdMaxFailure": [b"2"],
        "pwdLockoutDuration": [b"0"],
    }))  # fmt: skip
    admin.add_s(f"uid=dave,ou=people,{BASE}", ldap.modlist.addModlist({
        "objectClass": [b"inetOrgPerson"], "uid": [b"dave"], "cn": [b"Dave Policy"],
        "sn": [b"Policy"], "userPassword": [DAVE.encode()],
        "pwdPolicySubentry": [policy.encode()],
    }))  # fmt: skip
    admin.unbind_s()
    return "dave"


@pytest.fixture
async def server(slapd: Slapd, backend: str, tmp_path: Path) -> AsyncIterator[Server]:
    directory = DirectorySettings(
        url=slapd.url, base_dn=BASE, bind_dn=SERVICE_DN, bind_password=SecretStr(SERVICE_PASSWORD)
    )
    console = {"lockout_account_failures": 50, "lockout_address_failures": 50}
    async with running(
        backend, tmp_path, directory=directory, console=console, enroll=LIMITS
    ) as started:
        yield started


@pytest.fixture
def clock(server: Server) -> Clock:
    clock = Clock()
    server.services.enroll_sign_in_limit.clock = clock
    server.services.accounts.throttle.clock = clock
    return clock


def peer(server: Server, address: str) -> httpx.AsyncClient:
    """A browser connecting from `address`, through the proxy-header layer `serve` adds
    (uvicorn's, trusting settings.trusted_proxies)."""
    app = create_app(server.services.settings, server.services)
    trusted = server.services.settings.trusted_proxies
    layered = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=layered, client=(address, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://mdm.test")


async def sign_in(
    client: httpx.AsyncClient, user: str, password: str, forwarded: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return await client.post("/enroll", data={"user": user, "password": password},
                             headers=headers)  # fmt: skip


def assert_limited(answer: httpx.Response, whom: str) -> None:
    assert answer.status_code == 429
    assert f"Too many sign-in attempts {whom}: try again after 09:15 UTC" in answer.text
    assert int(answer.headers["Retry-After"]) == WINDOW.total_seconds()


async def test_one_user_from_several_addresses(server: Server, clock: Clock) -> None:
    tries = [("198.51.100.1", "wrong"), ("198.51.100.2", PASSWORDS["alice"]),
             ("198.51.100.3", "wrong"), ("198.51.100.4", "x")]  # fmt: skip
    answers = []
    for address, password in tries:
        async with peer(server, address) as client:
            answers.append(await sign_in(client, "alice", password))
    assert [a.status_code for a in answers[:3]] == [401, 200, 401]
    assert_limited(answers[3], "for this account")
    async with peer(server, "198.51.100.5") as client:
        with capture_logs() as logs:
            right = await sign_in(client, "Alice ", PASSWORDS["alice"])  # the name as typed
        assert_limited(right, "for this account")
        (line,) = [e for e in logs if e["event"] == "enroll_sign_in_rate_limited"]
        assert (line["user"], line["address"], line["by"]) == ("Alice", "198.51.100.5", "user")
        assert PASSWORDS["alice"] not in repr(logs)
        assert "Review and install" not in right.text
        assert (await sign_in(client, "bob", PASSWORDS["bob"])).status_code == 200
        clock.now += WINDOW
        assert (await sign_in(client, "alice", PASSWORDS["alice"])).status_code == 200


async def test_one_address_for_several_users(server: Server, clock: Clock) -> None:
    async with peer(server, "203.0.113.7") as client:
        for user in ("alice", "bob", "nobody", "carol"):
            assert (await sign_in(client, user, "wrong")).status_code == 401
        right = await sign_in(client, "bob", PASSWORDS["bob"])
        assert_limited(right, "from your network address")
        assert 'value="bob"' in right.text  # the form again, the name kept
    async with peer(server, "203.0.113.8") as elsewhere:
        assert (await sign_in(elsewhere, "bob", PASSWORDS["bob"])).status_code == 200
    clock.now += WINDOW
    async with peer(server, "203.0.113.7") as client:
        assert (await sign_in(client, "alice", PASSWORDS["alice"])).status_code == 200


async def test_the_address_is_the_one_a_trusted_proxy_forwards(
    server: Server, clock: Clock
) -> None:
    async with peer(server, "127.0.0.1") as proxy:  # trusted by default
        for user in ("alice", "bob", "carol", "nobody"):
            await sign_in(proxy, user, "wrong", forwarded="198.51.100.20")
        assert_limited(await sign_in(proxy, "bob", "x", forwarded="198.51.100.20"),
                       "from your network address")  # fmt: skip
        # Another client behind the same proxy is not held back by the first one's count.
        other = await sign_in(proxy, "bob", PASSWORDS["bob"], forwarded="198.51.100.21")
        assert other.status_code == 200
    async with peer(server, "203.0.113.30") as stranger:  # not a proxy: its header is ignored
        for index, user in enumerate(("erin", "frank", "grace", "heidi")):
            await sign_in(stranger, user, "wrong", forwarded=f"198.51.100.{40 + index}")
        spoofed = await sign_in(stranger, "ivan", "x", forwarded="198.51.100.99")
        assert_limited(spoofed, "from your network address")


async def test_the_directorys_own_lockout_still_refuses(
    server: Server, clock: Clock, dave: str
) -> None:
    async with peer(server, "198.51.100.60") as client:
        for _ in range(2):  # the directory's policy: two failures lock
            assert (await sign_in(client, dave, "wrong")).status_code == 401
        right = await sign_in(client, dave, DAVE)  # within our limit: the directory says no
        assert right.status_code == 401
        assert "this account is locked or disabled: ask IT" in right.text
        assert_limited(await sign_in(client, dave, DAVE), "for this account")
        clock.now += WINDOW  # ours lifts; the directory's does not
        again = await sign_in(client, dave, DAVE)
        assert again.status_code == 401
        assert "this account is locked or disabled: ask IT" in again.text
