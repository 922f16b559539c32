"""A server killed (SIGKILL) in the middle of an app update's roll-out pass: after a
restart every device has been sent each app's new version exactly once, every answer is
stored once, nothing is lost, on SQLite and PostgreSQL (tests/mdm/crash_rollout.py)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.db import backends
from tests.mdm.crash_rollout import killed_rollout
from tests.mdm.test_killed_server import database_env

DEVICES = int(os.environ.get("CRASH_TEST_ROLLOUT_DEVICES", "100"))
APPS = 5  # a pass reads 500 rows at a time: 1,000 installs are a few commands to kill between


@pytest.mark.parametrize("backend", backends())
def test_a_server_killed_mid_rollout_sends_each_update_once(backend: str, tmp_path: Path) -> None:
    with database_env(backend, tmp_path) as env:
        run = killed_rollout(tmp_path / "data", env, DEVICES, APPS)
    installs = DEVICES * APPS
    # Provably mid-way: the dead server had queued some installs and not all, and each
    # with its device's row (queued, naming a command that targets that device).
    queued = run.at_kill.targets
    assert 0 < queued < installs
    assert run.states_at_kill == {"queued": (queued, queued),
                                  "update_pending": (installs - queued, 0)}  # fmt: skip
    after, tally = run.after, run.tally
    assert after.targets == installs  # none queued twice
    assert after.devices == DEVICES
    assert after.acknowledged == installs  # nothing lost
    assert after.unanswered == 0
    assert tally.finished == DEVICES
    assert not tally.refused
    assert tally.duplicates == 0
    # From the devices' side: each was sent every app's new version once, by one command.
    for udid, sent in run.received.items():
        assert Counter(sent) == Counter(run.versions), udid
    assert len(run.received) == DEVICES
    assert all(len(set(uuids)) == len(uuids) for uuids in tally.received.values())
    # Every answer reached the roll-out: accepted, followed up with ManagedApplicationList.
    assert run.states == {"queued": (installs, 0)}
