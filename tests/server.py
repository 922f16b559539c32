"""Run the real `orchardist` command in a subprocess, for tests that need a listening server
(external peers such as scepclient, or TLS)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.cli_client import PID_FILE_VARIABLE

# The command as the tests run it: forked from the worker's warm interpreter when one runs
# (tests/cli_client.py, tests/cli_forkserver.py), else `python -m orchardist` itself.
ORCHARDIST = [sys.executable, "-I", "-S", str(Path(__file__).with_name("cli_client.py"))]
# How long a server may take to answer /healthz, and to stop once told. The bench's large
# runs on a busy machine (bench/crash.py) wait longer; the suite keeps these.
HEALTHY_WITHIN = 30.0
STOPPED_WITHIN = 15.0


def orchardist(
    data_dir: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> str:
    """Run one CLI command to completion (`stdin` written to it, e.g. a --password-stdin
    password) and return its stdout; a failure fails the test."""
    done = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"orchardist {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    data_dir: Path,
    *,
    http: bool,
    env: Mapping[str, str] | None = None,
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> Iterator[str]:
    """`orchardist serve` on `port` (default: a free loopback port) until the block ends;
    yields its base URL. Its output is in the data dir's serve-PORT.log."""
    with serve_process(data_dir, http=http, env=env, extra=extra, port=port) as (base, _):
        yield base


@contextmanager
def serve_process(
    data_dir: Path,
    *,
    http: bool,
    env: Mapping[str, str] | None = None,
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> Iterator[tuple[str, ServerProcess]]:
    """As running_server, also yielding the process (to kill it mid-work: a SIGKILL sent to
    it kills the server at once, forked or not)."""
    port = port or free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), *(["--http"] if http else [])]
    args.extend(extra)
    log_path = data_dir / f"serve-{port}.log"
    pid_file = data_dir / f"serve-{port}.pid"
    pid_file.unlink(missing_ok=True)
    with log_path.open("wb") as log:
        proc = ServerProcess(
            [*ORCHARDIST, "--data-dir", str(data_dir), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), PID_FILE_VARIABLE: str(pid_file)},
        )
        proc.pid_file = pid_file
        base = f"{'http' if http else 'https'}://127.0.0.1:{port}"
        try:
            _wait_until_healthy(base, proc, data_dir / "pki" / "ca.pem", log_path)
            yield base, proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=STOPPED_WITHIN)


class ServerProcess(subprocess.Popen[bytes]):
    """A server started through tests/cli_client.py. Forked, the server is not this process
    but its fork-server child (its pid in `pid_file`): SIGKILL goes to that one first and
    returns once it has exited, as a fresh server's would, then to the client."""

    pid_file: Path

    @property
    def server_pid(self) -> int:
        """The server's own pid (what its leases name): the forked command's, or this
        process's when the client exec'd the command itself."""
        return int(self.pid_file.read_text()) if self.pid_file.exists() else self.pid

    def send_signal(self, sig: int) -> None:
        if sig == signal.SIGKILL and self.poll() is None and self.pid_file.exists():
            command = int(self.pid_file.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(command, signal.SIGKILL)
            while _running(command):  # its sockets close as it exits, before it is reaped
                time.sleep(0.005)
        super().send_signal(sig)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_until_healthy(
    base: str, proc: subprocess.Popen[bytes], ca_file: Path, log_path: Path
) -> None:
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_file)) if base.startswith("https") else False
    )
    deadline = time.monotonic() + HEALTHY_WITHIN
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", verify=verify, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server did not become healthy:\n{log_path.read_text()}")
