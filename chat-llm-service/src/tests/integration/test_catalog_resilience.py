"""The read model's consumer outlives its dependencies: the broker stopped and started again as it
was, and its database connections killed, lose no event."""

from __future__ import annotations

from pathlib import Path

from common_libs.testing import LlmServer, NatsServer, TestTokenIssuer, eventually, free_port
from common_libs.testing.nats import start_nats
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.integration.conftest import as_stored, chat_settings, running_app, stored_products
from tests.support.catalog_events import catalog_events
from tests.support.servers import CatalogStub, product

Products = dict[str, dict[str, object]]


async def _holds(engine: AsyncEngine, expected: Products) -> bool:
    return await stored_products(engine) == expected


async def test_no_event_is_lost_when_the_broker_stops_and_starts_again(
    fresh_database: str,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
    tmp_path: Path,
) -> None:
    port, store = free_port(), tmp_path / "nats"
    first, second, third = product("Tent"), product("Stove"), product("Lantern")
    settings = chat_settings(fresh_database, fake_llm, catalog, nats_url=f"nats://127.0.0.1:{port}")

    async with running_app(settings, issuer) as application:
        engine: AsyncEngine = application.state.engine
        with start_nats(port=port, store_dir=store) as broker:
            async with catalog_events(broker.url) as events:
                await events.wait_handled(await events.created(first))
        # The broker is away: the consumer's fetch fails, it backs off and asks again.
        with start_nats(port=port, store_dir=store) as broker:
            async with catalog_events(broker.url) as events:
                await events.created(second, version=1)
                await events.created(third, version=1)
                moved = {**first, "price": "55.00"}
                await events.updated(moved, version=2)
                expected = {item["id"]: as_stored(item) for item in (moved, second, third)}
                await eventually(
                    lambda: _holds(engine, expected), within=30, message="every event applied"
                )


async def test_no_event_is_lost_when_the_database_connections_are_killed(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
) -> None:
    first, second = product("Kayak"), product("Paddle")
    settings = chat_settings(fresh_database, fake_llm, catalog, nats_url=own_nats.url)

    # The test's own connections, outside the app's pool.
    engine = create_async_engine(fresh_database, poolclass=NullPool)
    async with (
        running_app(settings, issuer) as application,
        catalog_events(own_nats.url) as events,
    ):
        await events.wait_handled(await events.created(first))
        async with engine.connect() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        moved = {**first, "stock_available": 0}
        await events.updated(moved)
        await events.created(second)
        expected = {item["id"]: as_stored(item) for item in (moved, second)}
        await eventually(lambda: _holds(engine, expected), within=30, message="events applied")
        pool = application.state.engine.pool.status()
    await engine.dispose()

    assert killed >= 1, pool
