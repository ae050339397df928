"""Reservations under concurrency: no oversell, no deadlock, one hold per reservation id.

Every request below runs concurrently in the app, each on a pooled database connection of its
own (the test settings allow 80), and commits for real.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import Product, ReservationItem
from tests.support.products import create_product, reservation_body

RESERVATIONS = "/inventory/reservations"


async def _stock_and_held(engine: AsyncEngine, product_id: str) -> tuple[int, int]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(Product.stock, Product.held).where(Product.id == uuid.UUID(product_id))
            )
        ).one()
    return row.stock, row.held


async def _held_by_reservations(engine: AsyncEngine, product_id: str) -> int:
    async with engine.connect() as connection:
        total = await connection.scalar(
            select(func.coalesce(func.sum(ReservationItem.quantity), 0)).where(
                ReservationItem.product_id == uuid.UUID(product_id)
            )
        )
    return int(total)


async def _hold_all(
    client: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> Counter[int]:
    responses = await asyncio.gather(
        *(client.post(RESERVATIONS, json=body, headers=headers) for body in bodies)
    )
    return Counter(response.status_code for response in responses)


@pytest.mark.parametrize("sales", ["none", "every other", "all"])
async def test_oversell_storm_50_holds_of_1_on_stock_10_exactly_10_succeed(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    sales: str,
) -> None:
    """Holds, one-step sales (``commit: true``), or both at once: 10 of them take the stock."""
    product = await create_product(client, admin_headers, stock=10)
    bodies = [
        reservation_body(
            (product["id"], 1), commit=sales == "all" or (sales == "every other" and n % 2 == 0)
        )
        for n in range(50)
    ]

    responses = await asyncio.gather(
        *(client.post(RESERVATIONS, json=body, headers=service_headers) for body in bodies)
    )

    assert Counter(response.status_code for response in responses) == {201: 10, 409: 40}
    sold = sum(r.status_code == 201 and r.json()["status"] == "committed" for r in responses)
    if sales != "every other":
        assert sold == (10 if sales == "all" else 0)
    available = (await client.get(f"/products/{product['id']}")).json()["stock_available"]
    assert available == 0
    assert await _stock_and_held(db_engine, product["id"]) == (10 - sold, 10 - sold)
    assert await _held_by_reservations(db_engine, product["id"]) == 10


async def test_oversell_storm_50_sales_of_1_mixed_with_holds_on_stock_10_take_exactly_10(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
) -> None:
    """Half the requests are sales (a hold, then its commit at once), half plain holds; the
    commits run while other holds still lock the product."""
    product = await create_product(client, admin_headers, stock=10)

    async def attempt(sale: bool) -> tuple[int, int | None]:
        body = reservation_body((product["id"], 1))
        held = await client.post(RESERVATIONS, json=body, headers=service_headers)
        if not sale or held.status_code != 201:
            return held.status_code, None
        path = f"{RESERVATIONS}/{body['reservation_id']}/commit"
        committed = await client.post(path, headers=service_headers)
        return held.status_code, committed.status_code

    outcomes = await asyncio.gather(*(attempt(sale=n % 2 == 0) for n in range(50)))

    assert Counter(held for held, _ in outcomes) == {201: 10, 409: 40}
    sales = [committed for _, committed in outcomes if committed is not None]
    assert set(sales) <= {200}
    available = (await client.get(f"/products/{product['id']}")).json()["stock_available"]
    assert available == 0
    stock, held = await _stock_and_held(db_engine, product["id"])
    assert (stock, held) == (10 - len(sales), 10 - len(sales))
    assert await _held_by_reservations(db_engine, product["id"]) == 10


async def test_deadlock_storm_100_two_item_holds_in_opposite_orders(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
) -> None:
    first = await create_product(client, admin_headers, stock=60)
    second = await create_product(client, admin_headers, stock=60)
    bodies = [
        reservation_body((first["id"], 1), (second["id"], 1))
        if i % 2
        else reservation_body((second["id"], 1), (first["id"], 1))
        for i in range(100)
    ]

    statuses = await _hold_all(client, service_headers, bodies)

    assert statuses == {201: 60, 409: 40}
    for product in (first, second):
        assert await _stock_and_held(db_engine, product["id"]) == (60, 60)
        assert await _held_by_reservations(db_engine, product["id"]) == 60


async def test_commits_releases_and_holds_racing_keep_stock_consistent(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
) -> None:
    first = await create_product(client, admin_headers, stock=100)
    second = await create_product(client, admin_headers, stock=100)
    pairs = [(first["id"], 2), (second["id"], 3)]
    held = [reservation_body(*pairs) for _ in range(20)]
    assert await _hold_all(client, service_headers, held) == {201: 20}

    calls = [
        client.post(
            f"{RESERVATIONS}/{body['reservation_id']}/{'commit' if i % 2 else 'release'}",
            headers=service_headers,
        )
        for i, body in enumerate(held)
    ]
    calls += [
        client.post(RESERVATIONS, json=reservation_body(*pairs[::-1]), headers=service_headers)
        for _ in range(20)
    ]
    responses = await asyncio.gather(*calls)

    assert {response.status_code for response in responses} <= {200, 201, 409}
    new_holds = sum(response.status_code == 201 for response in responses)
    # 10 commits sold 2 and 3; the new holds and nothing else are still held.
    assert await _stock_and_held(db_engine, first["id"]) == (80, 2 * new_holds)
    assert await _stock_and_held(db_engine, second["id"]) == (70, 3 * new_holds)


async def test_same_reservation_id_sent_10_times_at_once_holds_once(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
) -> None:
    product = await create_product(client, admin_headers, stock=10)
    body = reservation_body((product["id"], 3))

    statuses = await _hold_all(client, service_headers, [body] * 10)

    assert statuses == {201: 1, 200: 9}
    assert await _stock_and_held(db_engine, product["id"]) == (10, 3)
