"""Expiry: the lifespan's sweeper releases held reservations past their TTL, replica-safely."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from common_libs.testing import NatsServer, TestTokenIssuer, free_port
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.tables import Product, Reservation
from app.main import create_app
from app.services.reservation_manager import release_expired_reservations
from app.services.reservation_sweeper import run_reservation_sweeper
from tests.integration.conftest import integration_settings, trust_issuer
from tests.support.products import create_product, eventually, reservation_body

RESERVATIONS = "/inventory/reservations"


@pytest.fixture
async def sweeping_client(
    database_url: str, nats_server: NatsServer, issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A second replica of the app whose sweeper runs every 0.1 s."""
    app: FastAPI = create_app(
        integration_settings(database_url, nats_server.url, reservation_sweep_interval_seconds=0.1)
    )
    async with app.router.lifespan_context(app):
        trust_issuer(app, issuer)
        async with asgi_client(app) as client:
            yield client


async def _held(engine: AsyncEngine, product_id: str) -> int:
    async with engine.connect() as connection:
        held: int = await connection.scalar(
            select(Product.held).where(Product.id == uuid.UUID(product_id))
        )
    return held


async def test_reservation_past_its_ttl_is_released_without_a_release_call(
    sweeping_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
) -> None:
    product = await create_product(sweeping_client, admin_headers, stock=5)
    body = reservation_body((product["id"], 2), ttl_seconds=1)
    held = await sweeping_client.post(RESERVATIONS, json=body, headers=service_headers)
    assert held.status_code == 201

    async def stock_is_back() -> bool:
        response = await sweeping_client.get(f"/products/{product['id']}")
        return bool(response.json()["stock_available"] == 5)

    await eventually(stock_is_back, within=15, message="expired reservation released")

    # Asking for the same reservation again shows what became of it (and holds nothing).
    again = await sweeping_client.post(RESERVATIONS, json=body, headers=service_headers)
    assert again.status_code == 200
    assert again.json()["status"] == "released"


async def _expired_reservations(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    engine: AsyncEngine,
    count: int,
) -> dict[str, Any]:
    """A product with ``count`` held reservations of 1 whose expiry is already in the past."""
    product = await create_product(client, admin_headers, stock=count)
    bodies = [reservation_body((product["id"], 1)) for _ in range(count)]
    for body in bodies:
        assert (await client.post(RESERVATIONS, json=body, headers=service_headers)).is_success
    ids = [uuid.UUID(body["reservation_id"]) for body in bodies]
    async with engine.begin() as connection:
        await connection.execute(
            update(Reservation)
            .where(Reservation.id.in_(ids))
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
    return product


async def test_a_second_sweeper_skips_the_batch_another_one_holds(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
) -> None:
    product = await _expired_reservations(client, admin_headers, service_headers, db_engine, 3)

    async with db_engine.connect() as first, db_engine.connect() as second:
        await first.begin()
        released_by_first = await release_expired_reservations(connection=first, batch_size=100)
        # The first sweep has not committed: its rows are locked. The second must not wait.
        await second.begin()
        released_by_second = await asyncio.wait_for(
            release_expired_reservations(connection=second, batch_size=100), timeout=10
        )
        await second.commit()
        await first.commit()

    assert released_by_first >= 3
    assert released_by_second == 0
    assert await _held(db_engine, product["id"]) == 0


async def test_sweeper_keeps_running_after_a_failed_sweep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: every sweep fails to connect.
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    caplog.set_level(logging.ERROR, logger="app.services.reservation_sweeper")
    sweeper = asyncio.create_task(
        run_reservation_sweeper(engine=engine, interval_seconds=0.01, batch_size=10)
    )

    async def failed_twice() -> bool:
        return len(caplog.records) >= 2

    try:
        await eventually(failed_twice, message="two failed sweeps logged")
        assert not sweeper.done()
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await engine.dispose()
    assert all("reservation sweep failed" in record.getMessage() for record in caplog.records)
