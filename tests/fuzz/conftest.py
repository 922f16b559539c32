"""The fuzz tests end the session with how many inputs each target took."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import COUNTS, report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        terminalreporter.section("fuzz inputs per target")
        for line in report(dict(COUNTS)):
            terminalreporter.write_line(line)
