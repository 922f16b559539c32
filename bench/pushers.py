"""Pushers in processes of their own on one database (`python -m bench push --pushers N`):
each runs `tests.push.pusher_process`, the server's own Pusher; they are started and made
ready (storage open, TLS context built) before the clock starts, then told to go at once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.push.identity import PushIdentity


class PusherProcesses:
    def __init__(
        self,
        count: int,
        url: str,
        apns_url: str,
        ca_file: Path,
        identity: PushIdentity,
        schedule: Sequence[int],
    ) -> None:
        self.command = [
            sys.executable, "-m", "tests.push.pusher_process", url, apns_url, str(ca_file),
            str(identity.cert_file), str(identity.key_file), "--topic", identity.topic,
            "--schedule", *map(str, schedule),
        ]  # fmt: skip
        self.count = count
        self.processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> PusherProcesses:
        for _ in range(self.count):
            process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            self.processes.append(process)
        for process in self.processes:
            assert process.stdout is not None
            ready = process.stdout.readline().strip()
            if ready != "ready":
                raise RuntimeError(f"a pusher process did not start: {ready!r}")
        return self

    def go(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()

    def wait(self) -> list[dict[str, Any]]:
        """Each process's figures (claimed, pushed, cpu), once all have drained."""
        results = []
        for process in self.processes:
            out, _ = process.communicate(timeout=3600)  # a loaded machine is slow
            if process.returncode != 0:
                raise RuntimeError(f"a pusher process failed ({process.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
