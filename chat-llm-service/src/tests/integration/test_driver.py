"""Single statements through asyncpg on the pool's connections (the grounding search and the quota
hold): a connection that broke under one leaves the pool; a statement's own error does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import driver
from app.db.session import create_engine
from tests.conftest import make_settings


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A pool of one connection: a connection handed out again is the same one."""
    settings = make_settings(
        database_url=database_url, database_pool_size=1, database_max_overflow=0
    )
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        [row] = await driver.fetch(connection, "SELECT pg_backend_pid() AS pid")
    return int(row["pid"])


async def test_a_connection_that_broke_under_a_statement_is_not_handed_out_again(
    engine: AsyncEngine, database_url: str
) -> None:
    pid = await _backend_pid(engine)
    killer = create_engine(make_settings(database_url=database_url))
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()

    async with engine.connect() as connection:
        with pytest.raises(driver.DriverFailed):
            await driver.fetch(connection, "SELECT 1")

    assert await _backend_pid(engine) != pid


async def test_a_statement_cancelled_midway_gives_its_connection_up_at_once(
    engine: AsyncEngine,
) -> None:
    pid = await _backend_pid(engine)

    async def sleep_in_the_database() -> None:
        async with engine.connect() as connection:
            await driver.fetch(connection, "SELECT pg_sleep(10)")

    sleeping = asyncio.create_task(sleep_in_the_database())
    await asyncio.sleep(0.3)
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
            await driver.fetch(connection, "SELECT 1 / 0")

    assert await _backend_pid(engine) == pid


async def test_a_statement_outside_a_transaction_commits_on_its_own(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await driver.fetch(connection, "CREATE TEMP TABLE IF NOT EXISTS seen (n int)")
        await driver.fetch(connection, "INSERT INTO seen VALUES (1)")
    # The connection went back to the pool (and its reset) in between: nothing was rolled back.
    async with engine.connect() as connection:
        rows = await driver.fetch(connection, "SELECT n FROM seen")

    assert [row["n"] for row in rows] == [1]
