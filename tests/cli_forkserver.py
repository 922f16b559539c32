"""A warm interpreter that forks a child for each `orchardist` command a test runs.

The suite runs some 350 CLI commands. A fresh `python -m orchardist` spends ~1 to 2 s of
CPU importing the package and its libraries before it does anything, most of the suite's
CLI time on two cores. This process imports them once (`PRELOADED`), then, for each
request of tests/cli_client.py, forks; the child takes the client's standard streams,
environment, working directory and arguments and runs the command as `python -m
orchardist` would (runpy), so it exits as a fresh interpreter does (atexit, flushed
streams, the exit status), which this process sends back to the client.

What must not differ from a fresh process is left unimported here: `orchardist.cli`
(its rich consoles read the terminal and the environment when made) and typer's rich
help (it reads the environment when imported). The check after preloading refuses to
serve if a preload pulled one in; the clients then exec as before.

`python -m tests.cli_forkserver SOCKET` (tests/conftest.py starts one per test worker)."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

PRELOADED = (
    "orchardist.wiring",
    "orchardist.web.app",
    "orchardist.storage.sql.migrate",
    "orchardist.simulator.fleet",
    "typer",
    "rich.console",
    "rich.table",
    "httpx",
    "uvicorn",
    # What the commands import as they run (migrations, SQLite, backups): listed by
    # comparing sys.modules before and after init, device list, scep challenge,
    # enrollment-profile and token create in a warm interpreter.
    "aiosqlite",
    "alembic.command",
    "alembic.config",
    "alembic.autogenerate",
    "alembic.runtime.migration",
    "mako.ext.pygmentplugin",
    "rich.status",
    "tarfile",
    "orchardist.push.vendor",
    "sqlalchemy.ext.compiler",
)
NOT_PRELOADED = ("orchardist.cli", "typer.rich_utils")


@dataclass
class Request:
    connection: socket.socket
    streams: list[int]  # the client's stdin, stdout and stderr
    argv: list[str]
    env: dict[str, str]
    cwd: str


def serve(path: str) -> Request:
    """Fork a child per request until stopped; returns only in a child, with its request."""
    import importlib

    parent = os.getppid()
    for name in PRELOADED:
        importlib.import_module(name)
    early = [m for m in sys.modules if m.startswith(NOT_PRELOADED)]
    if early or threading.active_count() > 1:  # a fork copies one thread only
        sys.exit(f"cli fork server: preloading imported {early} or started a thread")
    # The children's collections leave the preloaded objects alone: a collection that
    # walked them would copy most of this process's pages into each child.
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)  # clients connect only once this one is ready
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    while os.getppid() == parent:  # a worker that died without stopping this one: stop
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is listener:
                request = _fork(listener, children)
                if request is not None:  # the child
                    selector.close()
                    listener.close()
                    for fd in (wake_read, wake_write):
                        os.close(fd)
                    return request
            else:
                _drain(wake_read)
                _reap(children)
    sys.exit("cli fork server: its test worker is gone")


def _fork(listener: socket.socket, children: dict[int, socket.socket]) -> Request | None:
    connection, _ = listener.accept()
    message, streams, _, _ = socket.recv_fds(connection, 1 << 16, 3)
    (length,) = struct.unpack("!I", message[:4])
    body = message[4:]
    while len(body) < length:
        more = connection.recv(length - len(body))
        if not more:
            break
        body += more
    payload = json.loads(body)
    pid = os.fork()
    if pid == 0:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for other in children.values():
            other.close()
        return Request(connection, streams, payload["argv"], payload["env"], payload["cwd"])
    for fd in streams:
        os.close(fd)
    children[pid] = connection
    connection.sendall(struct.pack("!i", pid))
    return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):  # the client is gone; so is the command
                connection.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
            connection.close()


def run(request: Request) -> None:
    """In the child: become the client's `python -m orchardist ARGS`."""
    for number, fd in enumerate(request.streams):
        os.dup2(fd, number)
        os.close(fd)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    _fresh_standard_streams(request.env)
    sys.path[0] = request.cwd  # as -m puts the working directory first
    # Killed client (SIGKILL, a test's timeout): the command dies with it, as it would.
    threading.Thread(target=_die_with, args=(request.connection,), daemon=True).start()
    sys.argv = ["orchardist", *request.argv]
    runpy.run_module("orchardist", run_name="__main__", alter_sys=True)


def _fresh_standard_streams(env: dict[str, str]) -> None:
    # As the interpreter makes them at start, for these descriptors: a terminal's stdout is
    # line-buffered (the server's was a file), stderr always.
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        old = getattr(sys, f"__{name}__")
        raw = io.FileIO(number, "rb" if number == 0 else "wb", closefd=False)
        buffered: io.BufferedIOBase = (
            io.BufferedReader(raw) if number == 0 else io.BufferedWriter(raw)
        )
        stream = io.TextIOWrapper(
            buffered,
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=number == 2 or (number == 1 and (os.isatty(1) or unbuffered)),
            write_through=unbuffered,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _die_with(connection: socket.socket) -> None:
    while True:
        try:
            if not connection.recv(64):
                break
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    socket_path = sys.argv[1]
    Path(socket_path).unlink(missing_ok=True)
    run(serve(socket_path))
