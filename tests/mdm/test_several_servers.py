"""Three server processes on one database, one killed (SIGKILL) mid-way, with a seeded
fleet spread over them answering a command sent to all, and the identity renewal (a job
under a lease) killed in the middle of its pass: every device was sent the command once
and each its renewal once, every result is stored once, and the leased job's work was
done exactly once — taken over by another process, neither repeated nor dropped — on
SQLite (one file shared by three processes: WAL and a busy timeout) and PostgreSQL
(tests/mdm/crash_several.py)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.db import backends
from tests.mdm.crash_several import several_run
from tests.mdm.test_killed_server import database_env

DEVICES = int(os.environ.get("CRASH_TEST_SEVERAL_DEVICES", "60"))


@pytest.mark.parametrize("backend", backends())
def test_three_servers_one_killed_do_every_job_once(backend: str, tmp_path: Path) -> None:
    with database_env(backend, tmp_path) as env:
        run = several_run(tmp_path / "data", env, DEVICES)
    # Provably mid-way: the killed process had queued some renewals and not all.
    assert 0 < run.renewals_at_kill.commands < DEVICES
    # The leased job: one re-delivery per device (its UUID derived from the serial), the
    # pass finished by another process; at most one challenge more than devices (the kill
    # may fall between minting one and queueing its profile).
    renewals = run.renewals
    assert renewals.commands == renewals.targets == renewals.devices == DEVICES
    assert DEVICES <= run.challenges <= DEVICES + 1
    assert run.done
    assert run.holder is None  # released once finished
    # The fan-out: one command, one target and one stored result per device.
    fan_out = run.fan_out
    assert fan_out.commands == 1
    assert fan_out.targets == fan_out.devices == fan_out.acknowledged == DEVICES
    assert renewals.acknowledged == DEVICES
    assert fan_out.unanswered == renewals.unanswered == 0
    # From the devices' side: each was sent both once, none again after answering.
    tally = run.tally
    assert len(tally.received) == DEVICES
    assert all(sorted(Counter(sent).values()) == [1, 1] for sent in tally.received.values())
    assert tally.duplicates == 0
    assert not tally.refused
    assert tally.finished == DEVICES
    assert tally.retried > 0  # the kill was felt by devices in flight
