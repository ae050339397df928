"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.utils.token_counter import prepare_encodings

# Nothing listens there: an app whose test gives it no broker never reaches a developer's local
# one (its consumer keeps retrying in the background until the app stops).
NO_BROKER = "nats://127.0.0.1:1"


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: plain log lines, never the developer's environment."""
    values: dict[str, object] = {
        "environment": "test",
        "log_json": False,
        "nats_url": NO_BROKER,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session", autouse=True)
def tiktoken_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cache directory of the session's own, filled with the verified encodings.

    Tests call tiktoken directly to check the service's counts; this makes that work offline.
    """
    directory = str(tmp_path_factory.mktemp("tiktoken-cache"))
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = directory
    prepare_encodings()
    yield directory
    if previous is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = previous


@pytest.fixture
def offline_app() -> FastAPI:
    """An app whose lifespan has not run (common-libs' ``offline_client`` calls it)."""
    return create_app(make_settings())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many requests schemathesis generated (for the closing note)."""
    module = sys.modules.get("tests.integration.test_schemathesis")
    if module is not None:
        count = module.CASES["count"]
        terminalreporter.write_line(f"schemathesis: {count} generated cases")
