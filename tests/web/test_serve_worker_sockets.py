"""`serve --workers 2` on Linux: each worker listens on a socket of its own (SO_REUSEPORT),
so that connections opened together are spread over the workers instead of all going to
whichever worker woke first (web/worker_sockets.py)."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from orchardist import sched_slices
from orchardist.web.worker_sockets import balanced
from tests.server import orchardist, serve_process
from tests.test_sched_slices import PER_TASK_SLICES

pytestmark = pytest.mark.skipif(not balanced(), reason="SO_REUSEPORT spreads connections on Linux")

CONNECTIONS = 32  # all on one of two workers by chance: 2 in 2**32


def test_each_worker_listens_for_itself_and_a_burst_of_connections_is_spread(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with serve_process(data_dir, http=True, extra=("--workers", "2")) as (base, server):
        port = int(base.rsplit(":", 1)[1])
        listening = _wait_for(lambda: _owners(port, "0A", _workers(server.server_pid)))
        workers = _workers(server.server_pid)
        # Two listening sockets, one per worker; the parent's holds the port only.
        assert len(workers) == 2
        assert sorted(listening.values()) == sorted(workers)
        if PER_TASK_SLICES:  # each worker's event loop asked for short slices
            assert [sched_slices.slice_of(w) for w in workers] == [sched_slices.SHORTEST] * 2

        burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        try:
            for connection in burst:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            for connection in burst:
                assert connection.recv(64).startswith(b"HTTP/1.1 200")
            ours = {connection.getsockname()[1] for connection in burst}
            served = Counter(_owners(port, "01", workers, peers=ours).values())
        finally:
            for connection in burst:
                connection.close()
    assert sum(served.values()) == CONNECTIONS
    assert set(served) == set(workers), served


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned for the server `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def _owners(
    port: int, state: str, pids: list[int], peers: set[int] | None = None
) -> dict[int, int]:
    """The server side's sockets on `port` in `state` (0A listening, 01 established; with
    `peers`, only those connected from these client ports): socket inode → the one of
    `pids` holding it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
            if local == port and fields[3] == state and (peers is None or remote in peers):
                inodes.add(int(fields[9]))
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                owners[int(target[8:-1])] = pid
    return owners


def _wait_for(look: Callable[[], dict[int, int]]) -> dict[int, int]:
    """Until `look` finds two sockets (the second worker may still be starting), 30 s at most."""
    deadline = time.monotonic() + 30
    while len(found := look()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return found
