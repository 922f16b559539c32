"""Scenario `crash`: kill -9 of `orchardist serve --http` with 10,000 devices
(--crash-devices), on SQLite and PostgreSQL (--crash-backends), at three points
(--crash-kinds):

- command: while the devices answer a command sent to all of them
  (tests/mdm/crash_run.py, the suite's test_killed_server.py at full size);
- profile: mid-way through the reconciliation that assigning a profile to all starts, one
  InstallProfile per device (tests/mdm/crash_reconcile.py);
- app: mid-way through an app update's roll-out pass, each device holding version 1 of
  --crash-apps apps and sent version 2 (tests/mdm/crash_rollout.py, test_killed_rollout.py).

Figures, not timings, besides the wall time of each run (seeding the fleet included):
devices, deliveries (commands that reached a device), results stored, duplicates (a
delivery beyond what a device is owed, from the devices' side) and lost (results missing),
which must be 0; resent_after_ack counts a command that reached a device again after it
had acknowledged it, any command."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import server
from tests.mdm.crash_fleet import Tally
from tests.mdm.crash_reconcile import killed_pass
from tests.mdm.crash_rollout import killed_rollout
from tests.mdm.crash_run import assign_to_all, killed_run, send_to_all, upload_profile

from bench.postgres import create_database as _postgres_database
from bench.postgres import drop_database as _drop

KINDS = ("command", "profile", "app")
BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
TIMEOUT = 3600  # each wait inside a run: the devices' session, the passes queueing
Env = dict[str, str]
Kind = Callable[[Path, Env, argparse.Namespace], dict[str, float]]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    # A server over 10,000 devices on a busy machine may take more than the suite's 30 s
    # to start and 15 s to stop; these runs are about what it loses, not how fast it starts.
    server.HEALTHY_WITHIN, server.STOPPED_WITHIN = 600.0, 300.0
    rows: list[dict[str, Any]] = []
    for backend in args.crash_backends:
        label = BACKENDS[backend]
        for kind in args.crash_kinds:
            where = f"{kind}, {label}"
            database = None if backend == "sqlite" else _postgres_database()
            if backend == "postgres" and database is None:
                rows.append(_row(where, "not reachable: not measured", 0))
                continue
            env = {"ORCHARDIST_DATABASE_URL": database} if database else {}
            started = time.monotonic()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    figures = RUNS[kind](Path(tmp) / "data", env, args)
            finally:
                if database is not None:
                    _drop(database)
            wall = time.monotonic() - started
            rows.extend(_row(where, metric, value) for metric, value in figures.items())
            rows.append(_row(where, "wall time", wall, "s"))
            # Printed as each run ends: a long scenario shows its figures before the table.
            print(f"crash {where}: {figures} in {wall:,.0f} s", flush=True)
    return rows


def _command(data_dir: Path, env: Env, args: argparse.Namespace) -> dict[str, float]:
    figures = killed_run(data_dir, env, args.crash_devices, "SecurityInfo",
                         send_to_all("SecurityInfo"), timeout=TIMEOUT)  # fmt: skip
    row = figures.as_row()
    return {
        "devices": row["devices"], "deliveries": row["deliveries"], "results": row["results"],
        "duplicates": _extra(figures.tally), "lost": row["lost"],
        "resent_after_ack": row["duplicates"], "results_at_kill": row["results_at_kill"],
        "commands": row["commands"], "retried_in_transit": row["retried_in_transit"],
    }  # fmt: skip


def _profile(data_dir: Path, env: Env, args: argparse.Namespace) -> dict[str, float]:
    run = killed_pass(data_dir, env, args.crash_devices, "InstallProfile", upload_profile,
                      assign_to_all, timeout=TIMEOUT)  # fmt: skip
    return {
        "devices": run.devices, "deliveries": run.tally.deliveries,
        "results": run.after.acknowledged, "duplicates": _extra(run.tally),
        "lost": run.devices - run.after.acknowledged, "resent_after_ack": run.tally.duplicates,
        "commands_at_kill": run.at_kill.commands, "commands": run.after.commands,
        "installed": run.states.get("installed", 0),
    }  # fmt: skip


def _app(data_dir: Path, env: Env, args: argparse.Namespace) -> dict[str, float]:
    run = killed_rollout(data_dir, env, args.crash_devices, args.crash_apps, timeout=TIMEOUT)
    row = run.as_row()
    owed = Counter(run.versions)  # each device: every app's new version once
    extra = sum(sum((Counter(sent) - owed).values()) for sent in run.received.values())
    return {
        "devices": row["devices"], "apps": row["apps"], "deliveries": row["deliveries"],
        "results": row["results"], "duplicates": extra, "lost": row["lost"],
        "resent_after_ack": row["duplicates"], "installs_at_kill": row["installs_at_kill"],
        "commands_at_kill": row["commands_at_kill"], "commands": row["commands"],
    }  # fmt: skip


def _extra(tally: Tally) -> int:
    """Deliveries beyond the one command each device is owed: the same again or another."""
    return sum(len(sent) - 1 for sent in tally.received.values() if sent)


RUNS: dict[str, Kind] = {"command": _command, "profile": _profile, "app": _app}


def _row(where: str, metric: str, value: float, unit: str = "") -> dict[str, Any]:
    return {"scenario": "crash", "metric": f"{metric} ({where})", "value": value, "unit": unit}
