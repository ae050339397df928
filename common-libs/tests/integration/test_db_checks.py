"""The database checks services run on themselves, run here on a small app and schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import CheckConstraint, Column, Index, Integer, MetaData, Table, Text
from sqlalchemy.ext.asyncio import create_async_engine

from common_libs.db import NAMING_CONVENTION, create_engine, ping_database
from common_libs.health import create_health_router
from common_libs.testing import PostgresServer, create_database
from common_libs.testing.db_checks import (
    check_ready_answers,
    check_ready_names_stopped_database,
    check_schema_matches_models,
    readiness_test,
)


def notes_metadata(*, with_check: bool = True) -> MetaData:
    """A table with a CHECK constraint and a partial index, as catalog-like models declare them."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    notes = Table(
        "notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("body", Text, nullable=False, unique=True),
        Column("stars", Integer, nullable=False),
    )
    if with_check:
        notes.append_constraint(CheckConstraint("stars >= 0", name="stars_not_negative"))
    Index("ix_notes_starred", notes.c.body, postgresql_where=notes.c.stars > 0)
    return metadata


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    """A database whose schema is ``notes_metadata()``."""
    url = create_database(postgres_server, "cl_schema_checks")

    async def create_schema() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(notes_metadata().create_all)
        await engine.dispose()

    asyncio.run(create_schema())
    return url


async def test_schema_check_passes_when_models_and_database_agree(database_url: str) -> None:
    await check_schema_matches_models(database_url, notes_metadata())


async def test_schema_check_fails_on_a_check_constraint_compare_metadata_misses(
    database_url: str,
) -> None:
    with pytest.raises(AssertionError, match="ck_notes_stars_not_negative"):
        await check_schema_matches_models(database_url, notes_metadata(with_check=False))


def probe_app(database_url: str) -> FastAPI:
    """An app built as a service's is: the engine in the lifespan, ``/ready`` pinging it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.engine = create_engine(database_url, pool_size=1)
            stack.push_async_callback(app.state.engine.dispose)
            yield

    app = FastAPI(lifespan=lifespan)
    checks = {"database": lambda: ping_database(app.state.engine)}
    app.include_router(
        create_health_router(
            service="probe", version="1", checks=checks, registry=CollectorRegistry()
        )
    )
    return app


async def test_ready_check_passes_while_the_database_answers(database_url: str) -> None:
    app = probe_app(database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await check_ready_answers(client, checks={"database": "ok"})


async def test_ready_check_on_a_stopped_database_waits_for_the_start_first() -> None:
    started: list[FastAPI] = []

    async def wait_for_start(app: FastAPI) -> None:
        started.append(app)

    await check_ready_names_stopped_database(probe_app, started=wait_for_start)

    assert len(started) == 1


async def test_ready_check_on_a_stopped_database_fails_for_an_app_that_stays_ready() -> None:
    def always_ready(database_url: str) -> FastAPI:
        app = probe_app(database_url)
        app.router.routes.clear()
        app.include_router(
            create_health_router(
                service="probe", version="1", checks={}, registry=CollectorRegistry()
            )
        )
        return app

    with pytest.raises(AssertionError):
        await check_ready_names_stopped_database(always_ready)


async def test_ready_check_compares_the_reported_checks_when_given() -> None:
    await check_ready_names_stopped_database(probe_app, checks={"database": "ok"})

    with pytest.raises(AssertionError):
        await check_ready_names_stopped_database(
            probe_app, checks={"database": "ok", "cache": "ok"}
        )


test_a_bound_readiness_test_passes_on_a_sound_app = readiness_test(
    probe_app, checks={"database": "ok"}
)


async def test_a_bound_readiness_test_fails_on_wrong_checks() -> None:
    test = readiness_test(probe_app, checks={"database": "ok", "cache": "ok"})

    with pytest.raises(AssertionError):
        await test()
