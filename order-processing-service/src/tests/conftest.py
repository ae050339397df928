"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app

# Set by the schemathesis test: how many requests it generated.
SCHEMATHESIS_CASES = pytest.StashKey[int]()


# Nothing listens there: an app whose test gives it no broker keeps its events in the outbox
# rather than publishing them to a developer's local broker.
NO_BROKER = "nats://127.0.0.1:9"


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: plain log lines, never the developer's environment."""
    values: dict[str, object] = {
        "environment": "test",
        "log_json": False,
        "nats_url": NO_BROKER,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
def offline_app() -> FastAPI:
    """An app whose lifespan has not run (``offline_client`` calls it)."""
    return create_app(make_settings())


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Report how many requests schemathesis generated (for the closing note of a change)."""
    cases = config.stash.get(SCHEMATHESIS_CASES, None)
    if cases is not None:
        terminalreporter.write_line(f"schemathesis: {cases} generated cases, no 5xx, all conform")
