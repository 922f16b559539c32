"""`serve --workers N`: a listening socket of its own for each worker process, so that the
kernel spreads new connections over the workers.

uvicorn binds one socket and its worker processes all accept on it. Whichever worker
wakes first takes every connection waiting (its event loop accepts until none is left),
so a burst of connections lands on one worker: 16 connections opened at once went
16-0, 14-2 or 13-3 to two workers in most tries, and a client that keeps its connections
(a proxy in front, a load test) then gets one core's worth of server however many
workers run (bench checkin measured `--workers 2` at 1.0 times one process so).

On Linux each worker binds the address itself with SO_REUSEPORT, and the kernel hands
each new connection to one of those sockets by a hash of its addresses. The parent's
socket only holds the port: it never listens, so no connection waits on it. uvicorn
passes the parent's socket to each worker it spawns by pickling it; this one pickles as
an order to bind afresh. Elsewhere (no SO_REUSEPORT, or one that does not balance, as on
macOS) the workers share uvicorn's socket as before.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


def balanced() -> bool:
    """Whether this system spreads connections over sockets sharing a port."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def serve_workers(config: uvicorn.Config) -> None:
    """Run `config.workers` worker processes until interrupted, as uvicorn.run does."""
    shared = config.bind_socket()  # uvicorn's: its checks, its "running on" line
    if balanced() and shared.family in (socket.AF_INET, socket.AF_INET6):
        address = shared.getsockname()
        family = shared.family
        shared.close()
        shared = _PerWorker.holding(family, address)
    Multiprocess(config, sockets=[shared]).run()


class _PerWorker(socket.socket):
    """The parent's socket: bound with SO_REUSEPORT and never listening; unpickled in a
    worker process, a new socket bound to the same address, for that worker alone."""

    @classmethod
    def holding(cls, family: int, address: Any) -> _PerWorker:
        sock = cls(family, socket.SOCK_STREAM)
        _bind(sock, address)
        sock.set_inheritable(True)
        return sock

    def __reduce__(self) -> tuple[Any, ...]:
        return (_worker_socket, (self.family, self.getsockname()))


def _worker_socket(family: int, address: Any) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    _bind(sock, address)
    return sock


def _bind(sock: socket.socket, address: Any) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
