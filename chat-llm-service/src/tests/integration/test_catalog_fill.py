"""The read model's initial fill: a database that never had one is filled from every page of the
catalog's public list while the consumer follows the stream; what an event changed meanwhile
wins over the fill's older snapshot; the fill retries while the catalog fails or cannot be reached;
one replica fills.

Each test has a database and a broker of its own (``fresh_database``, ``own_nats``), and the
session's stub catalog (``catalog``) or one of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from common_libs.events import CATALOG
from common_libs.testing import (
    LlmServer,
    NatsServer,
    TestTokenIssuer,
    UvicornServer,
    eventually,
)
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI
from sqlalchemy import text

from tests.integration.conftest import (
    as_stored,
    chat_settings,
    read_model_ready,
    running_app,
    stored_product,
    stored_products,
)
from tests.support.catalog_events import catalog_events
from tests.support.servers import SERVICE_ROOT, CatalogStub, product

PRODUCTS = 500
PAGE = 100


def _catalog(count: int = PRODUCTS) -> list[dict[str, object]]:
    return [
        product(f"Product {number}", description=f"Item number {number}", price="10.00")
        for number in range(count)
    ]


@asynccontextmanager
async def _service(
    database_url: str,
    broker: NatsServer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
    **overrides: object,
) -> AsyncIterator[FastAPI]:
    settings = chat_settings(database_url, fake_llm, catalog, nats_url=broker.url, **overrides)
    async with running_app(settings, issuer) as application:
        yield application


# For a test that holds the catalog's answer until it releases it: longer than any hold.
_PATIENT = {"catalog_timeout_seconds": 30.0}


async def _filled(application: FastAPI) -> bool:
    filled: bool = application.state.catalog_read_model.is_filled
    return filled


async def _state_rows(application: FastAPI) -> int:
    async with application.state.engine.connect() as connection:
        count: int = await connection.scalar(text("SELECT count(*) FROM read_model_state"))
    return count


async def test_an_empty_database_is_filled_from_every_page_then_follows_the_stream(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
) -> None:
    products = _catalog()
    await catalog.set_products(products)
    async with catalog_events(own_nats.url) as events:
        # Events older than the stream keeps (7 days): gone, the fill is their only source.
        await events.created(products[0])
        await events.js.purge_stream(CATALOG.name)

        async with _service(fresh_database, own_nats, fake_llm, catalog, issuer) as application:
            await eventually(lambda: read_model_ready(application), message="read model ready")
            filled = await stored_products(application.state.engine)
            changed = {**products[7], "price": "8.50", "stock_available": 0}
            added = product("Product 500", price="1.00")
            await events.updated(changed)
            await events.wait_handled(await events.created(added))
            after = await stored_products(application.state.engine)
            state_rows = await _state_rows(application)

    assert filled == {item["id"]: as_stored(item) for item in products}
    assert await catalog.requests() == [
        {"limit": PAGE, "cursor": f"after-{start}" if start else None}
        for start in range(0, PRODUCTS, PAGE)
    ]
    assert after == {
        **filled,
        changed["id"]: as_stored(changed),
        added["id"]: as_stored(added),
    }
    assert state_rows == 1


async def test_what_events_changed_during_the_fill_wins_over_its_older_snapshot(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
) -> None:
    products = _catalog()
    await catalog.set_products(products)
    await catalog.hold(after=1)
    # On the first page (filled before the events), on the third and on the fourth (after).
    renamed = {**products[10], "name": "Product 10 renamed"}
    cheaper = {**products[250], "price": "5.00"}
    deleted = products[399]

    async with (
        catalog_events(own_nats.url) as events,
        _service(fresh_database, own_nats, fake_llm, catalog, issuer) as application,
    ):
        engine = application.state.engine
        await eventually(lambda: _held(catalog), message="the fill waiting for its 2nd page")
        await events.updated(renamed)
        await events.updated(cheaper)
        await events.wait_handled(await events.deleted(deleted))
        during = [await stored_product(engine, item["id"]) for item in (cheaper, deleted)]
        await catalog.release()
        await eventually(lambda: _filled(application), message="read model filled")
        after = await stored_products(engine)

    assert during == [as_stored(cheaper), None]
    expected = {item["id"]: as_stored(item) for item in products if item is not deleted}
    expected |= {renamed["id"]: as_stored(renamed), cheaper["id"]: as_stored(cheaper)}
    assert after == expected


async def _held(catalog: CatalogStub) -> bool:
    return await catalog.held() > 0


async def test_the_fill_retries_while_the_catalog_fails_and_ready_waits_for_it(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
) -> None:
    products = _catalog(3)
    await catalog.set_products(products)
    await catalog.set_mode("error")

    async def failed_twice() -> bool:
        return len(await catalog.requests()) >= 2

    async with (
        _service(fresh_database, own_nats, fake_llm, catalog, issuer) as application,
        asgi_client(application) as http,
    ):
        await eventually(failed_twice, message="two failed attempts")
        before = await http.get("/ready")
        await catalog.set_mode("ok")
        await eventually(lambda: _ready(http), message="ready once filled")
        filled = await stored_products(application.state.engine)

    assert before.status_code == 503
    assert before.json()["checks"]["catalog_read_model"] == "failed (StartingUp)"
    assert filled == {item["id"]: as_stored(item) for item in products}


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/ready")).status_code == 200


async def test_the_fill_retries_while_the_catalog_cannot_be_reached(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    issuer: TestTokenIssuer,
    tmp_path: Path,
) -> None:
    products = _catalog(3)
    log = tmp_path / "catalog.log"
    env = {"STUB_PRODUCTS": json.dumps(products)}
    # Its port is chosen now; it listens only once started.
    server = UvicornServer(
        "tests.support.catalog_stub:app", cwd=SERVICE_ROOT, env=env, log_path=log
    )
    settings = chat_settings(
        fresh_database, fake_llm, CatalogStub(server.url), nats_url=own_nats.url
    )
    try:
        with _read_model_logs() as logs:
            async with running_app(settings, issuer) as application:
                await eventually(
                    lambda: sum("fill failed (CatalogUnavailable" in line for line in logs) >= 2,
                    message="two attempts failed",
                )
                await asyncio.to_thread(server.start)
                await eventually(
                    lambda: _filled(application), within=20, message="read model filled"
                )
                filled = await stored_products(application.state.engine)
    finally:
        await asyncio.to_thread(server.stop)

    assert filled == {item["id"]: as_stored(item) for item in products}


async def test_one_replica_fills_while_the_others_wait_for_it(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
) -> None:
    products = _catalog(250)
    await catalog.set_products(products)
    await catalog.hold(after=1)

    async with AsyncExitStack() as replicas:
        # A held page waits for the release: with the suite's 0.5 s timeout it would be asked
        # again (a fourth request) whenever the second replica starts slowly.
        first = await replicas.enter_async_context(
            _service(fresh_database, own_nats, fake_llm, catalog, issuer, **_PATIENT)
        )
        await eventually(lambda: _held(catalog), message="a replica filling")
        with _read_model_logs() as logs:
            second = await replicas.enter_async_context(
                _service(fresh_database, own_nats, fake_llm, catalog, issuer, **_PATIENT)
            )
            await eventually(
                lambda: any("another replica fills" in line for line in logs),
                message="the second replica waiting for the first",
            )
        await catalog.release()
        await eventually(lambda: _filled(first), message="first replica filled")
        await eventually(lambda: _filled(second), message="second replica filled")
        filled = await stored_products(first.state.engine)

    assert len(await catalog.requests()) == 3
    assert filled == {item["id"]: as_stored(item) for item in products}


@contextmanager
def _read_model_logs() -> Iterator[list[str]]:
    """The read model's log messages while the block runs (the app configures the root's)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("app.services.catalog_read_model")
    handler = Collect()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
