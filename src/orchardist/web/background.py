"""What `serve` runs beside the requests, in every process, and how several processes on
one database (`serve --workers N`, several hosts on one PostgreSQL) share it:

- claimed row by row, in every process: the pusher (push jobs under a claim that expires,
  storage/sql/push.py) and the webhook sender (deliveries likewise, storage/sql/webhooks.py).
  A claim per row spreads the work over the processes, and a dead one's rows are claimed
  again once their claim expires; a global lease would leave the others idle.
- compare-and-set per row, in every process: the profile reconciliation at start (each
  InstallProfile queued with its device rows, only if the row still names the command it
  named when read: ProfileStore.queue_profile_command), so two at once queue each once,
  and a server that starts after a kill finishes the dead one's pass at once.
- under a named lease (jobs/leases.py), in one process at a time, once per period for the
  whole server: the profile repair, the compliance recheck, the provisioning pass (expiry
  warnings, each also claimed per profile, then reconciliation), identity renewal and the
  clean-up; the app roll-out and the paced profile delivery (installs too many to sign in
  the request that asked for them) each run in the one process holding its lease, which
  keeps it (its pace is that process's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from orchardist.jobs.cleanup import EVERY as CLEANUP_EVERY
from orchardist.jobs.cleanup import Cleanup
from orchardist.jobs.leases import Leases
from orchardist.profiles.library import Reconciled
from orchardist.wiring import Services, utc_now

log = structlog.get_logger("orchardist.profiles")
# How often identities are checked for renewal: their lifetimes are counted in days.
RENEWAL_EVERY = timedelta(hours=1)
ROLLOUT_TICK_SECONDS = 5.0  # a roll-out pass when nothing wakes it
DELIVERY_TICK_SECONDS = 5.0  # a profile delivery pass likewise


def start(services: Services) -> list[asyncio.Task[None]]:
    """Every background job of `services`, started; cancel them to stop."""
    settings, pusher = services.settings, services.pusher
    assert pusher is not None
    leases = Leases(services.storage, ttl=timedelta(seconds=settings.job_lease_seconds),
                    clock=utc_now)  # fmt: skip
    jobs: dict[str, Awaitable[None]] = {
        "pusher": pusher.run(),
        "profile repair": _repair_profiles(services, leases),
    }
    if services.webhooks is not None:
        jobs["webhooks"] = services.webhooks.run()
    recheck = timedelta(minutes=settings.compliance.recheck_minutes)
    if services.compliance is not None:
        # Named by the rules: a start with new rules rechecks at once, whatever ran before.
        name = f"compliance.{services.compliance.rules.fingerprint}"
        jobs["compliance"] = leases.periodic(name, recheck, services.compliance.serve_pass)
    if (provisioning := services.provisioning) is not None:
        jobs["provisioning"] = leases.periodic(
            "provisioning", recheck, lambda: provisioning.serve_pass(pusher.wake)
        )
    if (renewal := services.renewal) is not None:
        jobs["identity renewal"] = leases.periodic(
            "identity.renewal", RENEWAL_EVERY, lambda: renewal.serve_pass(pusher.wake)
        )
    if services.apps is not None:
        # Asked at least twice a lease, so the holder keeps it between passes.
        tick = min(ROLLOUT_TICK_SECONDS, leases.ttl.total_seconds() / 3)
        jobs["app roll-out"] = services.apps.run(
            lambda step: leases.run("apps.rollout", step, keep=True), tick_seconds=tick
        )
    if (profiles := services.profiles) is not None:
        profiles.delivery.queued = pusher.wake
        tick = min(DELIVERY_TICK_SECONDS, leases.ttl.total_seconds() / 3)
        jobs["profile delivery"] = profiles.delivery.run(
            lambda step: leases.run("profiles.delivery", step, keep=True), tick_seconds=tick
        )
    cleanup = Cleanup(services.storage, grace=timedelta(days=settings.cleanup_grace_days),
                      clock=utc_now)  # fmt: skip
    jobs["clean-up"] = leases.periodic("cleanup", CLEANUP_EVERY, cleanup.run_pass)
    return [asyncio.create_task(_as_coroutine(job), name=name) for name, job in jobs.items()]


async def _as_coroutine(job: Awaitable[None]) -> None:
    await job


async def _repair_profiles(services: Services, leases: Leases) -> None:
    """At start, a reconciliation: a pass a killed server left half done is finished now,
    not at the next repair or TokenUpdate (each command was queued with its rows, so none
    is sent twice). Then every profile_repair_seconds, for the whole server: ProfileList
    from devices holding our profiles, and what is missing installed again (see
    ProfileLibrary.repair)."""
    profiles = services.profiles
    assert profiles is not None
    await _profile_pass(services, "profile_reconcile_at_start", profiles.reconcile)
    every = timedelta(seconds=services.settings.profile_repair_seconds)
    await leases.periodic(
        "profiles.repair", every, lambda: _profile_pass(services, "profile_repair", profiles.repair)
    )


async def _profile_pass(
    services: Services, event: str, run: Callable[[], Awaitable[Reconciled]]
) -> None:
    try:
        done = await run()
    except Exception as exc:  # the loop must outlive one failing pass
        log.error(f"{event}_failed", error=str(exc) or type(exc).__name__)
        return
    if services.pusher is not None:
        services.pusher.wake()
    log.info(event, installs=done.installs, removals=done.removals)
