"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: plain log lines, never the developer's environment."""
    values: dict[str, object] = {"environment": "test", "log_json": False, **overrides}
    return Settings.model_validate(values)


@pytest.fixture
def offline_app() -> FastAPI:
    """An app whose lifespan has not run (``offline_client`` calls it)."""
    return create_app(make_settings())
