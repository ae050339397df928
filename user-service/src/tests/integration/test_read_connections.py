"""A request that only reads runs its statement in autocommit (no BEGIN, no COMMIT), on the same
pool as the writers, and the connection it used is a transactional one again for the next user;
a connection that failed under a read leaves the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

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


async def _after_a_select(db: AsyncSession | AsyncConnection) -> tuple[int, bool]:
    """The backend's pid, and whether PostgreSQL says a transaction is open after one SELECT
    (asyncpg reads it from the server's ReadyForQuery message)."""
    pid = (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    connection = db if isinstance(db, AsyncConnection) else await db.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    return pid, bool(driver.is_in_transaction())


async def test_a_read_runs_without_begin_and_the_next_writer_still_gets_a_transaction(
    one_connection_app: FastAPI,
) -> None:
    state = one_connection_app.state
    async with state.read_engine.connect() as connection:
        reader_pid, reader_in_transaction = await _after_a_select(connection)
    async with state.sessionmaker() as session:
        writer_pid, writer_in_transaction = await _after_a_select(session)
        await session.rollback()
    async with state.read_engine.connect() as connection:
        again_pid, again_in_transaction = await _after_a_select(connection)

    assert reader_pid == writer_pid == again_pid  # one pooled connection served all three
    assert not reader_in_transaction  # no BEGIN: the SELECT was its own transaction
    assert writer_in_transaction  # the writer's session began a transaction, as always
    assert not again_in_transaction


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
            pid, _ = await _after_a_select(connection)
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
