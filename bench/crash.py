"""Scenario `crash`: kill -9 of `orchardist serve --http` while 10,000 devices
(--crash-devices) answer a command sent to all, on SQLite and PostgreSQL; the run of
tests/mdm/test_killed_server.py at full size. Figures, not timings: deliveries, results,
duplicates and lost, which must be 0."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from tests.mdm.crash_run import killed_run, send_to_all

from bench.postgres import create_database as _postgres_database
from bench.postgres import drop_database as _drop


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend in ("sqlite", "postgres"):
        database = None if backend == "sqlite" else _postgres_database()
        if backend == "postgres" and database is None:
            rows.append(_row("PostgreSQL", "not reachable: not measured", 0))
            continue
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        env = {"ORCHARDIST_DATABASE_URL": database} if database else {}
        try:
            with tempfile.TemporaryDirectory() as tmp:
                figures = killed_run(
                    Path(tmp) / "data", env, args.crash_devices, "SecurityInfo",
                    send_to_all("SecurityInfo"), timeout=1800,
                )  # fmt: skip
        finally:
            if database is not None:
                _drop(database)
        for metric, value in figures.as_row().items():
            rows.append(_row(label, metric, value))
    return rows


def _row(label: str, metric: str, value: float) -> dict[str, Any]:
    return {"scenario": "crash", "metric": f"{metric} ({label})", "value": value, "unit": ""}
