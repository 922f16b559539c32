"""Many virtual devices at once: enroll them, then run check-in sessions, either on a
timer (polling) or, with a local APNs peer, only when pushed, as real devices do."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.simulator.apns_peer import Push
from orchardist.simulator.connections import Connections
from orchardist.simulator.device import SimulationError, VirtualDevice
from orchardist.simulator.made_up import SEEDED
from orchardist.simulator.ota import OtaLogin, enroll_over_the_air
from orchardist.simulator.profile import EnrollmentPlan, tls_trust
from orchardist.simulator.seeded import SeededFleet

Progress = Callable[[str], None]  # called with "enrolled" or "session" as each one ends


class PushSource(Protocol):
    """Where pushes come from: an ApnsPeer in this process, or a FeedClient reading one in
    another (push_feed.py); the fleet sets `forward`."""

    forward: Callable[[Push], None] | None


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
    peer: PushSource | None = None,
    stop: asyncio.Event | None = None,
    ota: OtaLogin | None = None,
    seeded: SeededFleet | None = None,
) -> FleetReport:
    """Enroll `devices` (or, with `seeded`, take the first `devices` of a seeded fleet as
    they are), then run `rounds` sessions each (or sessions until `duration` seconds have
    passed), `interval` seconds apart. With `peer`, devices never poll: each runs a session
    when the peer forwards a push for its token, until `duration` ends or `stop` is set.

    At most `concurrency` devices talk at once, over as many kept-alive connections; the
    devices share one identity key (see seeded.py: the server cannot tell), and an idle
    device is a few objects, no task."""
    report = FleetReport(devices=devices)
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    connections = Connections(tls_trust(plan))  # check-ins: the hot path
    async with (
        httpx.AsyncClient(verify=tls_trust(plan), timeout=60, limits=limits) as http,
        contextlib.aclosing(connections),
    ):
        fleet = await _devices(plan, http, connections, devices, seed, seeded)

        async def enroll(device: VirtualDevice) -> VirtualDevice | None:
            if device.identity is not None:  # seeded: enrolled already
                return _enrolled(device, report, progress)
            async with gate:
                try:
                    if ota is not None:
                        await enroll_over_the_air(device, ota)
                    else:
                        await device.enroll()
                except (SimulationError, httpx.HTTPError) as exc:
                    report.failures.append(describe_failure(device.udid, exc))
                    return None
            return _enrolled(device, report, progress)

        woken = None
        if peer is not None:
            woken = _Woken(fleet, gate, concurrency, not_now, report, progress)
            peer.forward = woken.on_push
        enrolled = [d for d in await asyncio.gather(*map(enroll, fleet)) if d is not None]
        if woken is not None:
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


async def _devices(
    plan: EnrollmentPlan,
    http: httpx.AsyncClient,
    connections: Connections,
    count: int,
    seed: int,
    seeded: SeededFleet | None,
) -> list[VirtualDevice]:
    """`count` devices over one key: the seeded fleet's, or one made now (generating a
    2048-bit key takes a tenth of a second or more: one per device was most of a large
    fleet's start)."""
    if seeded is None:
        key = await _key(plan.key_size)
        return [
            VirtualDevice(plan, seed + n, key, http, connections=connections) for n in range(count)
        ]
    if count > len(seeded.certificates):
        raise SimulationError(
            f"the fleet file has {len(seeded.certificates)} devices that can check in, "
            f"not {count}: seed again with a larger --live"
        )
    fleet = []
    # Ready before the first push can be read: no await between here and `peer.forward`.
    for n, certificate in enumerate(seeded.certificates[:count]):
        device = VirtualDevice(
            plan, seeded.first + n, seeded.key, http, kind=SEEDED, connections=connections
        )
        device.adopt(x509.load_der_x509_certificate(certificate))
        fleet.append(device)
    return fleet


def _enrolled(
    device: VirtualDevice, report: FleetReport, progress: Progress | None
) -> VirtualDevice:
    report.enrolled += 1
    if progress:
        progress("enrolled")
    return device


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
    """Runs a session for each push the peer forwards, on `workers` tasks that take woken
    devices in the order their pushes came. A push for a device still waiting for a worker
    changes nothing (its session will ask for everything queued); one arriving during its
    session earns one more session afterwards (iOS checks in again when woken again). An
    idle device costs no task."""

    def __init__(
        self,
        fleet: list[VirtualDevice],
        gate: asyncio.Semaphore,
        workers: int,
        not_now: float,
        report: FleetReport,
        progress: Progress | None,
    ) -> None:
        self.by_token = {device.token.hex(): device for device in fleet}
        self.gate, self.not_now, self.report, self.progress = gate, not_now, report, progress
        self.queue: asyncio.Queue[VirtualDevice] = asyncio.Queue()
        self.waiting: set[str] = set()
        self.in_session: set[str] = set()
        self.again: set[str] = set()
        self.workers = [asyncio.ensure_future(self._work()) for _ in range(workers)]

    def on_push(self, push: Push) -> None:
        device = self.by_token.get(push.token)
        if device is None or device.identity is None or push.magic != device.push_magic:
            return  # iOS ignores a push whose magic is not its own
        self.report.pushes += 1
        if push.token in self.in_session:
            self.again.add(push.token)
        elif push.token not in self.waiting:
            self.waiting.add(push.token)
            self.queue.put_nowait(device)

    async def _work(self) -> None:
        while True:
            device = await self.queue.get()
            token = device.token.hex()
            self.waiting.discard(token)
            self.in_session.add(token)
            try:
                await _session(device, self.gate, self.not_now, self.report, self.progress)
            except Exception as exc:  # one device's bug must not stop a worker
                self.report.failures.append(describe_failure(device.udid, exc))
            self.in_session.discard(token)
            if token in self.again:
                self.again.discard(token)
                self.waiting.add(token)
                self.queue.put_nowait(device)  # before task_done: settle() waits for it
            self.queue.task_done()

    async def settle(self) -> None:
        await self.queue.join()
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)


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
