"""What the exported repositories' suite prints at its end: how long each repository's
``make venv test`` took (they run two at a time, as ``suite_runs`` says)."""

from __future__ import annotations

import pytest

SUITE_SECONDS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUITE_SECONDS:
        terminalreporter.section("exported repositories: make venv test, two at a time")
        for name, seconds in sorted(SUITE_SECONDS.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{name:<26} {seconds:6.1f} s")
