"""The pytest plugin (registered through the ``pytest11`` entry point): ``postgres_server``,
``nats_server``, and ``offline_client`` for suites that define an ``offline_app`` fixture."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from common_libs.testing.app_checks import asgi_client
from common_libs.testing.nats import NatsServer, start_nats
from common_libs.testing.postgres import PostgresServer, start_postgres

__all__ = ["nats_server", "offline_client", "postgres_server"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole test session: ``TEST_DATABASE_URL`` or a throwaway one."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield PostgresServer.from_url(url)
        return
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """A real NATS server with JetStream for the whole test session: ``TEST_NATS_URL`` or a
    throwaway one."""
    url = os.environ.get("TEST_NATS_URL")
    if url:
        yield NatsServer(url)
        return
    with start_nats() as server:
        yield server


@pytest.fixture
async def offline_client(offline_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound in process to the suite's ``offline_app`` (its lifespan not run) that
    checks each problem answer's type against its document."""
    async with asgi_client(offline_app) as client:
        yield client
