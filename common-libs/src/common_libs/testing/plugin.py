"""The pytest plugin (registered through the ``pytest11`` entry point): ``postgres_server``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from common_libs.testing.postgres import PostgresServer, start_postgres

__all__ = ["postgres_server"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole test session: ``TEST_DATABASE_URL`` or a throwaway one."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield PostgresServer.from_url(url)
        return
    with start_postgres() as server:
        yield server
