"""The fuzz tests end the session with how many inputs each target took."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harness import COUNTS, report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A mutated certificate with a serial number of zero or below makes cryptography warn
    (a future release will refuse it), and the suite makes warnings errors: in the server
    it is a warning only, and the message is refused or read as before."""
    ignore = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
    for item in items:
        if item.path.parent == Path(__file__).parent:
            item.add_marker(ignore)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        terminalreporter.section("fuzz inputs per target")
        for line in report(dict(COUNTS)):
            terminalreporter.write_line(line)
