"""A server killed (SIGKILL) while its devices are answering a command sent to all of them:
after a restart every device has been sent the command once, every result is stored once,
the counts add up and nothing was queued twice, on SQLite and PostgreSQL.

`python -m bench crash` runs the same with 10,000 devices (CRASH_TEST_DEVICES here).
A command the dead server had marked sent, whose answer never reached the device, is sent
again by the next server: the protocol allows that (the device never saw it), and the
devices here count only what reached them, so a duplicate is a command that reached a
device after it had acknowledged it."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.db import backends, fresh_database
from tests.mdm.crash_reconcile import killed_pass
from tests.mdm.crash_run import (
    Figures,
    Queue,
    assign_profile_to_all,
    assign_to_all,
    killed_run,
    send_to_all,
    upload_profile,
)

# Enough to be killed provably mid-way (some results stored, some not; a reconciliation
# with some installs queued) with devices in flight; the bench's 10,000 measure the rest.
DEVICES = int(os.environ.get("CRASH_TEST_DEVICES", "100"))


@contextmanager
def database_env(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The serve environment for `backend`: PostgreSQL a fresh database; SQLite the data
    dir's own file."""
    if backend == "sqlite":
        yield {}
        return
    # The database lives as long as this block: fresh_database on a thread's own loop.
    ready: queue.Queue[str] = queue.Queue()
    done = threading.Event()

    async def hold() -> None:
        async with fresh_database(backend, tmp_path, migrate=False) as url:
            ready.put(url)
            await asyncio.to_thread(done.wait)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        yield {"ORCHARDIST_DATABASE_URL": ready.get(timeout=60)}
    finally:
        done.set()
        holder.join(timeout=60)


def run_killed(backend: str, tmp_path: Path, request_type: str, put: Queue) -> Figures:
    with database_env(backend, tmp_path) as env:
        return killed_run(tmp_path / "data", env, DEVICES, request_type, put)


def assert_whole(figures: Figures) -> None:
    # Provably mid-way: the dead server had stored some results and not others.
    assert 0 < figures.at_kill.acknowledged < DEVICES
    assert figures.at_kill.targets == DEVICES  # everything queued had been committed
    after, tally = figures.after, figures.tally
    assert after.targets == after.devices == DEVICES  # each device one target, no more
    assert after.acknowledged == DEVICES  # nothing lost
    assert after.unanswered == 0
    assert tally.finished == DEVICES
    assert not tally.refused
    assert tally.deliveries == DEVICES
    assert tally.duplicates == 0
    assert all(len(sent) == 1 for sent in tally.received.values())
    assert tally.retried > 0  # the kill was felt by devices in flight


@pytest.mark.parametrize("backend", backends())
def test_a_killed_server_loses_and_repeats_no_command(backend: str, tmp_path: Path) -> None:
    figures = run_killed(backend, tmp_path, "SecurityInfo", send_to_all("SecurityInfo"))
    assert figures.after.commands == 1  # one command: nothing queued twice
    assert_whole(figures)


@pytest.mark.parametrize("backend", backends())
def test_a_killed_server_installs_an_assigned_profile_once(backend: str, tmp_path: Path) -> None:
    figures = run_killed(backend, tmp_path, "InstallProfile", assign_profile_to_all)
    assert figures.after.commands == DEVICES  # one InstallProfile per device, none again
    assert_whole(figures)
    # Killed between storing a device's result and moving its profile state, the server
    # moves it when the device sends the answer again (a duplicate runs on_result too).
    assert figures.profiles == {"installed": DEVICES}


@pytest.mark.parametrize("backend", backends())
def test_a_server_killed_mid_reconciliation_queues_each_install_once(
    backend: str, tmp_path: Path
) -> None:
    with database_env(backend, tmp_path) as env:
        run = killed_pass(
            tmp_path / "data", env, DEVICES, "InstallProfile", upload_profile, assign_to_all
        )
    # Provably mid-way: the dead server had queued some InstallProfiles and not all, and
    # each with its device's row (saved once at the end, they were all missing). The next
    # server queued the rest by itself, at start: killed_pass asks it for nothing.
    assert 0 < run.at_kill.commands < DEVICES
    assert run.states_at_kill == {"pending": run.at_kill.commands}
    after, tally = run.after, run.tally
    assert after.commands == after.targets == after.devices == DEVICES  # none queued twice
    assert after.acknowledged == DEVICES
    assert after.unanswered == 0
    assert tally.finished == DEVICES
    assert not tally.refused
    assert all(len(sent) == 1 for sent in tally.received.values())
    assert tally.deliveries == DEVICES
    assert tally.duplicates == 0
    assert run.states == {"installed": DEVICES}
