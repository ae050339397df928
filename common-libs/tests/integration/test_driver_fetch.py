"""Single statements through asyncpg on the pool's connections (``db.driver_fetch``): a connection
that broke under one, or whose call was cancelled midway, leaves the pool; a statement's own
error does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_libs.db import DRIVER_ERRORS, create_engine, driver_fetch
from common_libs.testing import PostgresServer, create_database, eventually


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    return create_database(postgres_server, "cl_driver_fetch")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A pool of one connection: a connection handed out again is the same one."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        [row] = await driver_fetch(connection, "SELECT pg_backend_pid() AS pid")
    return int(row["pid"])


async def test_a_connection_that_broke_under_a_statement_is_not_handed_out_again(
    engine: AsyncEngine, database_url: str
) -> None:
    pid = await _backend_pid(engine)
    killer = create_engine(database_url)
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()

    async with engine.connect() as connection:
        with pytest.raises(DRIVER_ERRORS):
            await driver_fetch(connection, "SELECT 1")

    assert await _backend_pid(engine) != pid


async def test_a_statement_cancelled_midway_gives_its_connection_up_at_once(
    engine: AsyncEngine, database_url: str
) -> None:
    pid = await _backend_pid(engine)

    async def sleep_in_the_database() -> None:
        async with engine.connect() as connection:
            await driver_fetch(connection, "SELECT pg_sleep(10)")

    monitor = create_engine(database_url)

    async def in_the_statement() -> bool:
        async with monitor.connect() as connection:
            state = await connection.scalar(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
        return bool(state == "active")

    sleeping = asyncio.create_task(sleep_in_the_database())
    try:
        await eventually(in_the_statement, message="the statement runs")
    finally:
        await monitor.dispose()
    started = time.monotonic()
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping

    assert time.monotonic() - started < 1
    assert await _backend_pid(engine) != pid


async def test_an_error_of_the_statement_keeps_the_connection(engine: AsyncEngine) -> None:
    pid = await _backend_pid(engine)

    async with engine.connect() as connection:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await driver_fetch(connection, "SELECT 1 / 0")

    assert await _backend_pid(engine) == pid


async def test_a_statement_outside_a_transaction_commits_on_its_own(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await driver_fetch(connection, "CREATE TEMP TABLE IF NOT EXISTS seen (n int)")
        await driver_fetch(connection, "INSERT INTO seen VALUES (1)")
    # The connection went back to the pool (and its reset) in between: nothing was rolled back.
    async with engine.connect() as connection:
        rows = await driver_fetch(connection, "SELECT n FROM seen")

    assert [row["n"] for row in rows] == [1]
