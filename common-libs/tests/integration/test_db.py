"""The database helpers on a real PostgreSQL: idle-only ping, readiness ping, transactions, the
read engine (autocommit on the same pool)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, SecretStr
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common_libs.db import (
    create_engine,
    engine_from_settings,
    get_db_connection,
    get_read_engine,
    ping_database,
    read_only_engine,
    unit_of_work,
)
from common_libs.testing import PostgresServer, create_database


class DbSettings(BaseModel):
    """A service's ``database_*`` settings, as every service names them."""

    database_url: SecretStr
    database_pool_size: int = 1
    database_max_overflow: int = 0
    database_idle_ping_seconds: float = 0


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    """A database of this module's own, with one table to write to."""
    url = create_database(postgres_server, "cl_db_helpers")

    async def make_table() -> None:
        engine = create_engine(url)
        async with unit_of_work(engine) as connection:
            await connection.execute(text("CREATE TABLE notes (body text NOT NULL)"))
        await engine.dispose()

    asyncio.run(make_table())
    return url


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second pool, to act on the server behind the back of the pool under test."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = await connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


async def terminate(admin: AsyncEngine, pid: int) -> None:
    async with admin.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def notes(admin: AsyncEngine, body: str) -> int:
    async with admin.connect() as connection:
        count: int = await connection.scalar(
            text("SELECT count(*) FROM notes WHERE body = :body"), {"body": body}
        )
    return count


async def test_idle_connection_killed_by_the_server_is_replaced_before_use(
    database_url: str, admin: AsyncEngine
) -> None:
    engine = engine_from_settings(DbSettings(database_url=SecretStr(database_url)))
    try:
        first_pid = await backend_pid(engine)
        await terminate(admin, first_pid)

        second_pid = await backend_pid(engine)
    finally:
        await engine.dispose()

    assert second_pid != first_pid


async def test_connection_in_steady_use_is_not_pinged_before_use(
    database_url: str, admin: AsyncEngine
) -> None:
    # The proof that the ping is skipped: a connection killed within the threshold is handed out.
    engine = create_engine(database_url, pool_size=1, max_overflow=0, idle_ping_seconds=3600)
    try:
        await terminate(admin, await backend_pid(engine))

        with pytest.raises(exc.DBAPIError):
            await backend_pid(engine)
    finally:
        await engine.dispose()


async def test_the_connection_returned_last_is_handed_out_first(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=3, max_overflow=0)
    try:
        async with engine.connect() as first, engine.connect() as second:
            pids = [
                await first.scalar(text("SELECT pg_backend_pid()")),
                await second.scalar(text("SELECT pg_backend_pid()")),
            ]
        # The blocks close the inner one first: ``first`` went back last.
        again = [await backend_pid(engine) for _ in range(3)]
    finally:
        await engine.dispose()

    assert again == [pids[0]] * 3


@pytest.mark.parametrize("hide", [True, None], ids=["explicit", "by-default"])
async def test_statement_parameters_stay_out_of_errors(
    database_url: str, hide: bool | None
) -> None:
    engine = (
        create_engine(database_url)
        if hide is None
        else create_engine(database_url, hide_parameters=hide)
    )
    try:
        async with engine.connect() as connection:
            with pytest.raises(exc.DBAPIError) as raised:
                await connection.execute(text("SELECT 1 / :zero"), {"zero": 0})
    finally:
        await engine.dispose()

    assert "hidden due to hide_parameters" in str(raised.value)


async def test_ping_database_returns_while_the_server_answers(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await ping_database(engine)
    finally:
        await engine.dispose()

    assert engine.sync_engine.pool.checkedout() == 0


async def test_ping_database_raises_when_nothing_answers(postgres_server: PostgresServer) -> None:
    engine = create_engine(postgres_server.url("cl_no_such_database"))
    try:
        with pytest.raises(Exception, match="cl_no_such_database"):
            await ping_database(engine)
    finally:
        await engine.dispose()


async def test_unit_of_work_commits_when_the_block_ends(
    database_url: str, admin: AsyncEngine
) -> None:
    async with unit_of_work(admin) as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('committed')"))

    assert await notes(admin, "committed") == 1


async def test_unit_of_work_rolls_back_when_the_block_raises(admin: AsyncEngine) -> None:
    async def write_then_fail() -> None:
        async with unit_of_work(admin) as connection:
            await connection.execute(text("INSERT INTO notes VALUES ('rolled back')"))
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError, match="the work failed"):
        await write_then_fail()

    assert await notes(admin, "rolled back") == 0


RequestConnection = Annotated[AsyncConnection, Depends(get_db_connection, scope="function")]


def request_app(engine: AsyncEngine) -> FastAPI:
    """An app whose handlers write through the request's connection."""
    app = FastAPI()
    app.state.engine = engine

    @app.post("/notes/{body}")
    async def write(body: str, connection: RequestConnection, fail: bool = False) -> dict[str, str]:
        await connection.execute(text("INSERT INTO notes VALUES (:body)"), {"body": body})
        if fail:
            raise RuntimeError("the handler failed after writing")
        return {"written": body}

    return app


async def test_request_connection_commits_before_the_answer(admin: AsyncEngine) -> None:
    transport = httpx.ASGITransport(app=request_app(admin))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/notes/by-request")

    assert response.status_code == 200
    assert await notes(admin, "by-request") == 1


async def test_request_connection_rolls_back_when_the_handler_raises(admin: AsyncEngine) -> None:
    transport = httpx.ASGITransport(app=request_app(admin), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/notes/failed-request", params={"fail": "true"})

    assert response.status_code == 500
    assert await notes(admin, "failed-request") == 0


async def test_a_refused_connection_is_an_unavailable_database() -> None:
    from common_libs.db_errors import is_database_unavailable
    from common_libs.testing.processes import free_port

    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")
    try:
        with pytest.raises(ConnectionRefusedError) as refused:
            await ping_database(engine)
    finally:
        await engine.dispose()

    assert is_database_unavailable(refused.value)
    assert not is_database_unavailable(FileNotFoundError("settings.toml"))


async def _after_a_select(connection: AsyncConnection) -> tuple[int, bool]:
    """The backend's pid, and whether PostgreSQL says a transaction is open after one SELECT
    (asyncpg reads it from the server's ReadyForQuery message)."""
    pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    return pid, bool(driver.is_in_transaction())


async def test_a_read_runs_without_begin_and_the_next_writer_still_gets_a_transaction(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)  # one connection for all
    reads = read_only_engine(engine)
    try:
        async with reads.connect() as connection:
            reader_pid, reader_in_transaction = await _after_a_select(connection)
        async with engine.begin() as connection:
            writer_pid, writer_in_transaction = await _after_a_select(connection)
        async with reads.connect() as connection:
            again_pid, again_in_transaction = await _after_a_select(connection)
    finally:
        await engine.dispose()

    assert reader_pid == writer_pid == again_pid  # one pooled connection served all three
    assert not reader_in_transaction  # no BEGIN: the SELECT was its own transaction
    assert writer_in_transaction  # the writer began a transaction, as always
    assert not again_in_transaction


async def test_the_read_engine_dependency_hands_out_the_apps_read_engine(
    admin: AsyncEngine,
) -> None:
    app = FastAPI()
    app.state.read_engine = read_only_engine(admin)

    @app.get("/in-transaction")
    async def in_transaction(
        engine: Annotated[AsyncEngine, Depends(get_read_engine)],
    ) -> dict[str, bool]:
        async with engine.connect() as connection:
            _, open_transaction = await _after_a_select(connection)
        return {"in_transaction": open_transaction}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/in-transaction")

    assert response.json() == {"in_transaction": False}
