"""A request that only reads runs its statement on the read engine (common-libs'
``read_only_engine``: autocommit on the writers' pool); a connection that failed under a read
leaves the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.main import create_app
from tests.conftest import make_settings
from tests.support.users import bearer, new_customer


@pytest.fixture
async def one_connection_app(service_settings: dict[str, object]) -> AsyncIterator[FastAPI]:
    """The app with a pool of exactly one connection: every reader and writer gets the same one."""
    settings = {**service_settings, "database_pool_size": 1, "database_max_overflow": 0}
    application = create_app(make_settings(**settings))
    async with application.router.lifespan_context(application):
        yield application


async def _backend_pid(connection: AsyncConnection) -> int:
    pid: int = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


async def test_a_read_whose_connection_the_server_ended_gives_that_connection_up(
    one_connection_app: FastAPI, database_url: str
) -> None:
    """``GET /users/me`` runs its statement on asyncpg itself (common-libs' ``driver_fetch``): the
    pool's one connection, ended by the server, fails that read (503) and is not handed out
    again (put back, it would fail every read after it).

    The outbox relay shares the pool: should it take the ended connection first (a pass woken
    late by the registration's event, or its 5 s poll), it is the one that fails and SQLAlchemy
    gives the connection up, so the first read may answer 200; the read after never meets it."""
    async with asgi_client(one_connection_app) as client:
        _, tokens = await new_customer(client)
        assert (await client.get("/users/me", headers=bearer(tokens))).status_code == 200
        async with one_connection_app.state.read_engine.connect() as connection:
            pid = await _backend_pid(connection)
        await _terminate(database_url, pid)

        lost = await client.get("/users/me", headers=bearer(tokens))
        again = await client.get("/users/me", headers=bearer(tokens))

    assert lost.status_code in (503, 200), lost.text
    assert again.status_code == 200, again.text


async def _terminate(database_url: str, pid: int) -> None:
    """The server ends the session of backend ``pid`` (as a fast shutdown ends them all)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            ended = await connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await engine.dispose()
    assert ended
