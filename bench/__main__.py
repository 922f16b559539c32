"""`python -m bench [SCENARIO …]`: run scenarios, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import (
    apps,
    checkin,
    console,
    crash,
    enqueue,
    profiles,
    push,
    reports,
    scale,
    scep,
    storm,
)
from bench.targets import describe_target

SCENARIOS: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
    "scep": scep.run,
    "checkin": checkin.run,
    "push": push.run,
    "profiles": profiles.run,
    "console": console.run,
    "apps": apps.run,
    "reports": reports.run,
    "storm": storm.run,
    "crash": crash.run,
    "enqueue": enqueue.run,
    "scale": scale.run,
}
RESULTS = Path(__file__).with_name("results.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", help=f"some of: {', '.join(SCENARIOS)} (all)")
    parser.add_argument("--enrollments", type=int, default=400, help="scep: enrollments to run")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="scep: server processes to try")
    parser.add_argument("--devices", type=int, default=20, help="checkin: virtual devices")
    parser.add_argument("--cycles", type=int, default=20, help="checkin: commands per device")
    parser.add_argument(
        "--idles", type=int, default=6000, help="checkin: Idles replayed (Python client)"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="checkin: seconds of Idles (wrk)"
    )
    parser.add_argument("--push-devices", type=int, default=10_000, help="push: devices")
    parser.add_argument("--push-100k", action="store_true", help="push: 100,000 devices")
    parser.add_argument(
        "--push-virtual", type=int, default=200, help="push: push-woken virtual devices (0: none)"
    )
    parser.add_argument("--pushers", type=int, default=1, help="push: pusher processes")
    parser.add_argument(
        "--push-backends", nargs="+", default=["sqlite", "postgres"], help="push: backends"
    )
    parser.add_argument(
        "--profile-devices", type=int, default=1000, help="profiles: one profile per device"
    )
    parser.add_argument(
        "--console-devices", type=int, default=100_000, help="console: devices in PostgreSQL"
    )
    parser.add_argument("--ipa-mb", type=int, default=500, help="apps: size of the .ipa stored")
    parser.add_argument("--manifests", type=int, default=20_000, help="apps: manifests to build")
    parser.add_argument("--storm-devices", type=int, default=200, help="storm: devices at once")
    parser.add_argument("--crash-devices", type=int, default=10_000, help="crash: devices")
    parser.add_argument(
        "--crash-kinds", type=_names(crash.KINDS), default=crash.KINDS,
        help=f"crash: where the server is killed, some of {','.join(crash.KINDS)}",
    )  # fmt: skip
    parser.add_argument(
        "--crash-backends", type=_names(tuple(crash.BACKENDS)), default=tuple(crash.BACKENDS),
        help="crash: some of sqlite,postgres",
    )  # fmt: skip
    parser.add_argument(
        "--crash-apps", type=int, default=1, help="crash: apps updated in the roll-out kill"
    )
    parser.add_argument(
        "--enqueue-devices", type=int, default=1_000_000, help="enqueue: the large fleet"
    )
    parser.add_argument("--scale-devices", type=int, default=100_000, help="scale: devices")
    parser.add_argument(
        "--scale-live", type=int, default=10_000, help="scale: live push-woken devices"
    )
    parser.add_argument(
        "--scale-nice", type=int, default=0, help="scale: the simulator's nice (0: as the servers)"
    )
    parser.add_argument("--storm-py-spy", help="storm: record the server with py-spy into DIR")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(
            f"unknown scenario {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}"
        )
    rows: list[dict[str, Any]] = []
    for name in args.scenarios or SCENARIOS:
        rows.extend(SCENARIOS[name](args))
    table = Table(title="make bench")
    for column in ("scenario", "metric", "value", "unit", "target", "ratio", "note"):
        table.add_column(column)
    for row in rows:
        target, ratio = describe_target(row)
        table.add_row(
            row["scenario"],
            row["metric"],
            _fmt(row["value"]),
            row["unit"],
            target,
            ratio,
            row.get("note", ""),
        )
    Console(width=170).print(table)
    RESULTS.write_text(
        json.dumps(
            {"when": datetime.now(UTC).isoformat(), "machine": platform.node(), "results": rows},
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


def _names(known: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated choice among `known`, as a tuple."""

    def parse(value: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        unknown = set(names) - set(known)
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"some of {','.join(known)}")
        return names

    return parse


def _fmt(value: float) -> str:
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


if __name__ == "__main__":
    main()
