"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from hypothesis.configuration import set_hypothesis_home_dir

from app.config import Settings
from app.main import create_app

SERVICE_ROOT = Path(__file__).resolve().parents[1]
# Hypothesis (under schemathesis) keeps its caches with pytest's, not in the working directory.
set_hypothesis_home_dir(SERVICE_ROOT / ".pytest_cache" / "hypothesis")
# Cheap Argon2 for speed (tests that are about the parameters set their own).
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 1024, "argon2_parallelism": 1}
# No broker unless a test hands one (the session's nats_server): an app's relay must never publish
# test events to a developer's local NATS. Nothing listens on port 1; the relay backs off.
NO_BROKER_URL = "nats://127.0.0.1:1"
SCHEMATHESIS_CASES = pytest.StashKey[int]()
_key_dir: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _local_key_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Apps that generate their signing key do it here, never in the working directory."""
    _key_dir.append(tmp_path_factory.mktemp("keys"))


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: plain log lines, cheap hashing, never the developer's environment."""
    values: dict[str, object] = {
        "environment": "test",
        "log_json": False,
        "nats_url": NO_BROKER_URL,
        **FAST_ARGON2,
        **({"signing_key_file": _key_dir[-1] / "signing-key.pem"} if _key_dir else {}),
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
def offline_app() -> FastAPI:
    """An app whose lifespan has not run (``offline_client`` calls it)."""
    return create_app(make_settings())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many cases schemathesis generated (for the closing note of a run)."""
    cases = terminalreporter.config.stash.get(SCHEMATHESIS_CASES, None)
    if cases is not None:
        terminalreporter.write_line(f"schemathesis: {cases} generated cases")
