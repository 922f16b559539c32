"""The pusher: turns due push jobs into APNs pushes, and schedules the next ones.

Enqueueing a command makes one job per device due now (`PushStore.request_push`,
coalesced: five commands, one push). The pusher claims due jobs in batches for a lease,
first pushes before re-pushes (a fan-out longer than the first re-push step still pushes
every device once before any twice), pushes them, and sets each job's next due time from
the re-push schedule (1 min, 5 min, 30 min, then hourly by default) counted from the
moment APNs accepted that device's push; a job whose device has nothing pending any more
is dropped at its next claim. A pusher that dies mid-batch loses nothing: its claims come
due again when the lease ends, so a device gets at most one extra push; a push still
waiting to be sent when its lease ends is not sent (another pusher may have it by then).

APNs outcomes (protocol-notes §3c): accepted → next step of the schedule; 410 /
BadDeviceToken → the token is marked invalid and the job dropped (TokenUpdate revives
it); 429 / 5xx / transport trouble after the sender's retries → tried again after the
first schedule step; anything else (403, BadTopic…) is our configuration: logged loudly
and retried at the slowest step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog

from orchardist.pki.store import PkiFiles
from orchardist.polling import Wake, drain_all, poll_forever
from orchardist.push.certificate import stored
from orchardist.push.sender import (
    ApnsSender,
    Outcome,
    PushRequest,
    PushResult,
    client_context,
    summary,
)
from orchardist.storage import PushDone, PushStore, PushTarget

log = structlog.get_logger("orchardist.push")

DEFAULT_SCHEDULE = (60, 300, 1800, 3600)
EXPIRY_ERROR_DAYS = 7


@dataclass(frozen=True)
class PushSettings:
    apns_url: str
    ca_file: Path | None
    concurrency: int = 200
    schedule: Sequence[int] = DEFAULT_SCHEDULE
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 1.0
    batch: int = 1000
    workers: int = 3  # batches in flight: claim the next while the last is being pushed


class SenderSource:
    """The sender for the push certificate on disk, rebuilt when it is replaced (an admin
    may import one while the server runs); None while there is none."""

    def __init__(self, files: PkiFiles, settings: PushSettings) -> None:
        self.files, self.settings = files, settings
        self._sender: ApnsSender | None = None
        self._stamp: tuple[float, float] | None = None
        self._checked_on: date | None = None

    async def current(self) -> ApnsSender | None:
        if not self.files.has_push():
            return None
        ca_file = self.settings.ca_file
        if ca_file is not None and not ca_file.is_file():
            raise FileNotFoundError(
                f"apns_ca_file {ca_file} does not exist: fix ORCHARDIST_APNS_CA_FILE or unset it"
            )
        stamp = (self.files.push_cert.stat().st_mtime, self.files.push_key.stat().st_mtime)
        if stamp != self._stamp:
            await self.close()
            certificate = stored(self.files)
            assert certificate is not None
            self._certificate = certificate
            self._checked_on = None
            context = client_context(
                self.files.push_cert,
                self.files.push_key,
                self.settings.ca_file,
                password=self.files.password_of(self.files.push_key),
            )
            self._sender = ApnsSender(
                self.settings.apns_url,
                certificate.topic,
                context,
                concurrency=self.settings.concurrency,
            )
            self._stamp = stamp
        self._warn_of_expiry()
        return self._sender

    def _warn_of_expiry(self) -> None:
        """Once a day: from 30 days before expiry a warning, from 7 an error (an expired
        push certificate strands every device)."""
        now = datetime.now(UTC)
        if self._checked_on == now.date():
            return
        self._checked_on = now.date()
        days = self._certificate.days_left(now)
        message = self._certificate.warning(now)
        if message is None:
            return
        level = log.error if days <= EXPIRY_ERROR_DAYS else log.warning
        level("push_certificate_expiring", days_left=days, topic=self._certificate.topic,
              detail=message)  # fmt: skip

    async def close(self) -> None:
        if self._sender is not None:
            await self._sender.close()
            self._sender = None


class Pusher:
    def __init__(
        self,
        store: PushStore,
        senders: Callable[[], Awaitable[ApnsSender | None]],
        settings: PushSettings,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.senders = senders
        self.settings = settings
        self.clock = clock
        self._wake = Wake()
        self.pushed = 0  # accepted by APNs, since start
        self.on_batch: Callable[[int], None] | None = None  # claimed count, for progress bars
        self._last_failure: tuple[str, float] | None = None

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim one batch and push it; how many jobs were claimed (0: nothing due)."""
        sender = await self.senders()
        if sender is None:
            return 0
        now = self.clock()
        claimed = await self.store.claim_pushes(now, self.settings.lease, self.settings.batch)
        if not claimed:
            return 0
        lease_ends = now + self.settings.lease
        answers = await asyncio.gather(*(self._push(sender, t, lease_ends) for t in claimed))
        # A push not sent before the lease ended is not reported: the job stays as it was
        # (not pushed), for whichever pusher claims it next.
        sent = [(t, a) for t, a in zip(claimed, answers, strict=True) if a is not None]
        done = [self._next_step(target, *answer) for target, answer in sent]
        await self.store.finish_pushes(claimed[0].claim, done, self.clock())
        results = [result for _, (result, _) in sent]
        self.pushed += sum(1 for r in results if r.outcome == Outcome.ACCEPTED)
        _log_batch(results)
        if self.on_batch is not None:
            self.on_batch(len(claimed))
        return len(claimed)

    async def drain(self) -> int:
        """Push everything due now, `workers` batches at a time; how many were claimed."""
        totals = await asyncio.gather(*(self._drain_one() for _ in range(self.settings.workers)))
        return sum(totals)

    async def _drain_one(self) -> int:
        return await drain_all(self.run_once)

    async def run(self) -> None:
        """Until cancelled: drain, then wait for a wake-up or the next poll."""
        await poll_forever(self.drain, self._wake, self.settings.poll_seconds, self._report_failure)

    def _report_failure(self, error: str) -> None:
        """Log a failing round, but the same failure once a minute, not every poll."""
        now = asyncio.get_running_loop().time()
        last = self._last_failure
        if last is None or last[0] != error or now - last[1] >= 60:
            log.error("push_round_failed", error=error, hint="pushes resume once this is fixed")
            self._last_failure = (error, now)

    async def _push(
        self, sender: ApnsSender, target: PushTarget, lease_ends: datetime
    ) -> tuple[PushResult, datetime] | None:
        """The push's result and when it came (None: not sent, the lease ended first)."""
        request = PushRequest(target.device_id, target.token, target.push_magic)
        result = await sender.send_while(request, lambda: self.clock() < lease_ends)
        return None if result is None else (result, self.clock())

    def _next_step(self, target: PushTarget, result: PushResult, at: datetime) -> PushDone:
        """The job after a push answered at `at`: the next re-push counts from the device's
        own push, not from the batch's claim or end."""
        schedule, attempts = self.settings.schedule, target.attempts
        if result.outcome == Outcome.ACCEPTED:
            delay = schedule[min(attempts, len(schedule) - 1)]
            return PushDone(
                target.device_id, at + timedelta(seconds=delay), attempts + 1, accepted_at=at
            )
        if result.outcome == Outcome.INVALID_TOKEN:
            return PushDone(target.device_id, None, attempts, token_invalid=True)
        if result.outcome == Outcome.RETRY_LATER:
            return PushDone(target.device_id, at + timedelta(seconds=schedule[0]), attempts)
        return PushDone(target.device_id, at + timedelta(seconds=schedule[-1]), attempts)


def _log_batch(results: Sequence[PushResult]) -> None:
    counts = summary(results)
    refused = [r for r in results if r.outcome == Outcome.REJECTED]
    if refused:
        first = refused[0]
        log.error(
            "apns_refused",
            status=first.status,
            reason=first.reason,
            devices=len(refused),
            hint="check the push certificate and ORCHARDIST_APNS_URL",
        )
    deferred = [r for r in results if r.outcome == Outcome.RETRY_LATER]
    if deferred:
        first = deferred[0]
        log.warning(
            "apns_push_deferred",
            devices=len(deferred),
            status=first.status,
            reason=first.reason,
            hint="APNs throttled, failed or was unreachable; tried again later, commands wait",
        )
    invalid = [r.device_id for r in results if r.outcome == Outcome.INVALID_TOKEN]
    if invalid:
        log.info("apns_token_invalid", devices=len(invalid), first=invalid[0])
    log.debug("push_batch", **counts)
