"""Many virtual devices at once: enroll them, then run check-in sessions, either on a
timer (polling) or, with a local APNs peer, only when pushed, as real devices do."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.simulator.apns_peer import ApnsPeer, Push
from orchardist.simulator.device import SimulationError, VirtualDevice
from orchardist.simulator.ota import OtaLogin, enroll_over_the_air
from orchardist.simulator.profile import EnrollmentPlan, tls_trust

Progress = Callable[[str], None]  # called with "enrolled" or "session" as each one ends


@dataclass
class FleetReport:
    devices: int
    enrolled: int = 0
    sessions: int = 0
    commands: int = 0
    not_now: int = 0
    pushes: int = 0  # pushes that reached a device (push mode)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def describe_failure(udid: str, exc: Exception) -> str:
    """What went wrong for one device; a server that could not be reached is named, since
    the address came from a profile the user may not have looked at."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.RequestError):
        try:
            url = exc.request.url.copy_with(query=None)  # the query may hold a one-time token
        except RuntimeError:  # an error raised before a request was made
            return f"{udid}: {text}"
        return f"{udid}: cannot reach {url}: {text}"
    return f"{udid}: {text}"


def retarget(plan: EnrollmentPlan, server: str) -> EnrollmentPlan:
    """The plan with every URL pointed at `server` (scheme://host:port), e.g. a test server
    reached over plain HTTP behind what the profile says."""
    target = urlsplit(server)

    def moved(url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))

    return dataclasses.replace(
        plan,
        scep_url=moved(plan.scep_url),
        checkin_url=moved(plan.checkin_url),
        server_url=moved(plan.server_url),
    )


async def run_fleet(
    plan: EnrollmentPlan,
    *,
    devices: int,
    rounds: int = 1,
    interval: float = 1.0,
    duration: float | None = None,
    not_now: float = 0.0,
    concurrency: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
    peer: ApnsPeer | None = None,
    stop: asyncio.Event | None = None,
    ota: OtaLogin | None = None,
) -> FleetReport:
    """Enroll `devices`, then run `rounds` sessions each (or sessions until `duration`
    seconds have passed), `interval` seconds apart. With `peer`, devices never poll: each
    runs a session when the peer forwards a push for its token, until `duration` ends or
    `stop` is set."""
    report = FleetReport(devices=devices)
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(verify=tls_trust(plan), timeout=60) as http:
        fleet = [
            VirtualDevice(plan, seed + index, await _key(plan.key_size), http)
            for index in range(devices)
        ]

        async def enroll(device: VirtualDevice) -> VirtualDevice | None:
            async with gate:
                try:
                    if ota is not None:
                        await enroll_over_the_air(device, ota)
                    else:
                        await device.enroll()
                except (SimulationError, httpx.HTTPError) as exc:
                    report.failures.append(describe_failure(device.udid, exc))
                    return None
            report.enrolled += 1
            if progress:
                progress("enrolled")
            return device

        woken = _Woken(fleet, gate, not_now, report, progress)
        if peer is not None:
            peer.forward = woken.on_push
        enrolled = [d for d in await asyncio.gather(*map(enroll, fleet)) if d is not None]
        if peer is not None:
            await _until(duration, stop)
            await woken.settle()
            report.seconds = time.monotonic() - started
            return report
        done_rounds = 0
        stopping = stop if stop is not None else asyncio.Event()
        while enrolled and _more(done_rounds, rounds, duration, started, stopping):
            await asyncio.gather(*(_session(d, gate, not_now, report, progress) for d in enrolled))
            done_rounds += 1
            if _more(done_rounds, rounds, duration, started, stopping):
                await _until(interval, stopping)
    report.seconds = time.monotonic() - started
    return report


async def _session(
    device: VirtualDevice,
    gate: asyncio.Semaphore,
    not_now: float,
    report: FleetReport,
    progress: Progress | None,
) -> None:
    async with gate:
        try:
            stats = await device.session(not_now)
        except (SimulationError, httpx.HTTPError) as exc:
            report.failures.append(describe_failure(device.udid, exc))
            return
    report.sessions += 1
    report.commands += stats.commands
    report.not_now += stats.not_now
    if progress:
        progress("session")


class _Woken:
    """Runs a session for each push the peer forwards; a push arriving during a session
    earns one more session afterwards (iOS checks in again when woken again)."""

    def __init__(
        self,
        fleet: list[VirtualDevice],
        gate: asyncio.Semaphore,
        not_now: float,
        report: FleetReport,
        progress: Progress | None,
    ) -> None:
        self.by_token = {device.token.hex(): device for device in fleet}
        self.gate, self.not_now, self.report, self.progress = gate, not_now, report, progress
        self.running: dict[str, asyncio.Task[None]] = {}
        self.again: set[str] = set()

    def on_push(self, push: Push) -> None:
        device = self.by_token.get(push.token)
        if device is None or device.identity is None or push.magic != device.push_magic:
            return  # iOS ignores a push whose magic is not its own
        self.report.pushes += 1
        if push.token in self.running:
            self.again.add(push.token)
            return
        self.running[push.token] = asyncio.ensure_future(self._sessions(push.token, device))

    async def _sessions(self, token: str, device: VirtualDevice) -> None:
        try:
            while True:
                await _session(device, self.gate, self.not_now, self.report, self.progress)
                if token not in self.again:
                    return
                self.again.discard(token)
        finally:
            del self.running[token]

    async def settle(self) -> None:
        while self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)


async def _until(duration: float | None, stop: asyncio.Event | None) -> None:
    waiter = stop if stop is not None else asyncio.Event()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration):
            await waiter.wait()


def _more(
    done: int, rounds: int, duration: float | None, started: float, stop: asyncio.Event
) -> bool:
    if stop.is_set():
        return False
    if duration is not None:
        return time.monotonic() - started < duration
    return done < rounds


async def _key(size: int) -> rsa.RSAPrivateKey:
    # Key generation is the slow part of a large fleet; OpenSSL releases the GIL for it.
    return await asyncio.to_thread(rsa.generate_private_key, 65537, size)
