"""The CLI fork server the suite runs commands through (tests/cli_forkserver.py): a
command forked from it must look to the test like `python -m orchardist` run afresh."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli_client import SOCKET_VARIABLE
from tests.server import ORCHARDIST, serve_process


@pytest.fixture(autouse=True)
def _forked() -> None:
    """Wait until this worker's fork server listens (the clients exec until then)."""
    if SOCKET_VARIABLE not in os.environ:
        pytest.skip("TESTS_FRESH_PROCESSES is set: the commands run without a fork server")
    deadline = time.monotonic() + 60
    while not Path(os.environ[SOCKET_VARIABLE]).exists():
        assert time.monotonic() < deadline, "the fork server never listened"
        time.sleep(0.1)


def _run(*args: str, cwd: Path, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([*ORCHARDIST, *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, check=False)  # fmt: skip


def test_arguments_streams_status_environment_and_folder_are_the_callers(
    tmp_path: Path,
) -> None:
    made = _run("--data-dir", "data", "init", "--hostname", "forked.test", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["hostname"] == "forked.test"
    assert (tmp_path / "data" / "orchardist.toml").is_file()  # relative to the caller's folder
    created = _run("--data-dir", "data", "admin", "create", "alice", "--role", "admin",
                   "--password-stdin", cwd=tmp_path, stdin="correct horse battery\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    listed = _run("--data-dir", "data", "admin", "list", cwd=tmp_path)
    assert "alice" in listed.stdout
    # The fork server has no such variable: only the caller's environment can refuse it.
    refused = _run("--data-dir", "data", "admin", "list", cwd=tmp_path,
                   env={"ORCHARDIST_NO_SUCH_SETTING": "1"})  # fmt: skip
    assert refused.returncode == 1
    assert "ORCHARDIST_NO_SUCH_SETTING" in refused.stderr
    unknown = _run("no-such-command", cwd=tmp_path)
    assert (unknown.returncode, "No such command" in unknown.stderr) == (2, True)


def test_a_signal_reaches_the_command_and_its_status_comes_back(tmp_path: Path) -> None:
    data_dir = _initialised(tmp_path)
    with serve_process(data_dir, http=True) as (base, proc):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # as uvicorn ends: the signal again
    port = base.rsplit(":", 1)[1]
    assert "Application shutdown complete" in (data_dir / f"serve-{port}.log").read_text()


def _initialised(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    made = _run("--data-dir", str(data_dir), "init", "--hostname", "h", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return data_dir


def test_a_killed_server_is_gone_when_the_kill_returns(tmp_path: Path) -> None:
    with serve_process(_initialised(tmp_path), http=True) as (base, proc):
        proc.kill()  # tests/server.py's: the forked server first, then its client
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=1)
        assert proc.wait(timeout=10) == -signal.SIGKILL


def test_a_killed_caller_takes_the_command_with_it(tmp_path: Path) -> None:
    with serve_process(_initialised(tmp_path), http=True) as (base, proc):
        os.kill(proc.pid, signal.SIGKILL)  # the client alone, as subprocess's timeout does
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
            except httpx.TransportError:
                break  # nothing listens: the forked server is gone too
            assert time.monotonic() < deadline, "the forked server outlived its killed caller"
            time.sleep(0.05)
