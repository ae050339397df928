"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from tests.support.clients import app_client


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: plain log lines, never the developer's environment."""
    values: dict[str, object] = {"environment": "test", "log_json": False, **overrides}
    return Settings.model_validate(values)


@pytest.fixture
def offline_app() -> FastAPI:
    """An app whose lifespan has not run (``offline_client`` calls it)."""
    return create_app(make_settings())


@pytest.fixture
async def offline_client(offline_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """common-libs' ``offline_client``, checking the type of each problem answer against the
    app's document as the integration suite's ``client`` does."""
    async with app_client(offline_app) as client:
        yield client
