"""A running fleet shared by the tests that only read from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fleet import Fleet, new_fleet


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """The whole fleet, started once for the session and stopped (Ctrl-C) afterwards."""
    running = new_fleet().start()
    try:
        yield running
    finally:
        running.stop()
        running.remove()
