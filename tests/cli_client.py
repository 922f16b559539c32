"""`orchardist` for the tests: runs the command in a child of the warm interpreter
(tests/cli_forkserver.py) when one serves this test worker, else execs `python -m
orchardist` itself. Either way the caller sees one process with the command's exit status,
standard streams, environment and working directory.

Run as `python -I -S cli_client.py ARGS…` (standard library only, ~20 ms): the import of
the package and its libraries, ~1 to 2 s of CPU, is what the fork server has already paid.
A signal sent to this process goes to the command; if this process is killed (SIGKILL, as
subprocess's timeout does) the command kills itself at once."""

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from typing import BinaryIO

SOCKET_VARIABLE = "TESTS_CLI_FORKSERVER"
PID_FILE_VARIABLE = "TESTS_CLI_PID_FILE"  # where to write the forked command's pid
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


def main() -> None:
    path = os.environ.get(SOCKET_VARIABLE)
    connection = _connect(path) if path else None
    if connection is None:  # no fork server (yet): the command, as itself
        os.execv(sys.executable, [sys.executable, "-m", "orchardist", *sys.argv[1:]])  # noqa: S606
    request = json.dumps(
        {"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}
    ).encode()
    socket.send_fds(connection, [struct.pack("!I", len(request)) + request], [0, 1, 2])
    reader = connection.makefile("rb")
    pid = _number(reader)
    pid_file = os.environ.get(PID_FILE_VARIABLE)
    if pid_file:  # for tests/server.py, whose SIGKILL must reach the command at once
        with open(pid_file + ".new", "w") as out:
            out.write(str(pid))
        os.replace(pid_file + ".new", pid_file)
    for number in FORWARDED:
        signal.signal(number, lambda received, _frame: _forward(pid, received))
    status = _number(reader)  # os.waitstatus_to_exitcode's: negative for a signal
    if status < 0:  # ended by a signal: so does this process, for the caller's returncode
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's handler cannot be set
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


def _connect(path: str) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:  # not listening yet (still importing) or gone: exec instead
        connection.close()
        return None
    return connection


def _number(reader: BinaryIO) -> int:
    data = reader.read(4)
    if len(data) < 4:  # the fork server went away: the command's status is unknown
        sys.exit(255)
    return int(struct.unpack("!i", data)[0])


def _forward(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended already; its status is on the way
        os.kill(pid, number)


if __name__ == "__main__":
    main()
