"""The fuzz tests end the session with how many inputs each target took. Under
pytest-xdist (`make fuzz`) each worker counts its own and hands the counts back when it
finishes (`workeroutput`); the controller, which runs no test, adds them up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.harness import COUNTS, report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A mutated certificate with a serial number of zero or below, or a name attribute of
    a length X.520 does not allow (an empty commonName), makes cryptography warn when it is
    read (a future release will refuse the first), and the suite makes warnings errors: in
    the server it is a warning only, and the message is refused or read as before."""
    ignores = (
        pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
        pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning"),
    )
    for item in items:
        if item.path.parent == Path(__file__).parent:
            for ignore in ignores:
                item.add_marker(ignore)


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set on an xdist worker only
    if output is not None:
        output["fuzz_counts"] = dict(COUNTS)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown with -p no:xdist
def pytest_testnodedown(node: Any, error: object) -> None:
    COUNTS.update(node.workeroutput.get("fuzz_counts", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        terminalreporter.section("fuzz inputs per target")
        for line in report(dict(COUNTS)):
            terminalreporter.write_line(line)
