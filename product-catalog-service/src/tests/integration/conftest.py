"""Integration fixtures: one migrated database per test session, the app with its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from common_libs.testing import PostgresServer, create_database
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration, pointed at ``database_url``."""
    config = Config(str(SERVICE_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for this session, migrated to the newest revision."""
    url = create_database(postgres_server, "catalog_service_test")
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (engine and clients open)."""
    application = create_app(make_settings(database_url=database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the running app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
