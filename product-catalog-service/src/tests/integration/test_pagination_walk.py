"""Keyset pagination: a walk sees every product exactly once, even while products are added."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import Product
from tests.support.products import create_product, unique

PRODUCTS = 1000
PAGE_SIZE = 7


START = datetime(2026, 1, 1, tzinfo=UTC)


def _row(category: str, created_at: datetime) -> dict[str, Any]:
    return {
        "sku": unique("walk"),
        "name": "walk",
        "description": "",
        "category": category,
        "price": Decimal("1.00"),
        "currency": "USD",
        "stock": 1,
        "created_at": created_at,
    }


async def _insert_products(
    engine: AsyncEngine, category: str, count: int = PRODUCTS, *, offset_ms: int = 0
) -> set[str]:
    """Insert products in one statement; every three share a ``created_at``."""
    rows = [
        _row(category, START + timedelta(milliseconds=offset_ms + i // 3)) for i in range(count)
    ]
    async with engine.begin() as connection:
        result = await connection.execute(insert(Product).returning(Product.id), rows)
        return {str(product_id) for product_id in result.scalars()}


async def _walk(client: httpx.AsyncClient, category: str, between_pages: Any = None) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"category": category, "limit": PAGE_SIZE}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/products", params=params)
        assert response.status_code == 200
        page = response.json()
        assert len(page["items"]) <= PAGE_SIZE
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between_pages is not None:
            await between_pages()


async def test_walk_with_limit_7_sees_each_of_1000_products_exactly_once(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    category = unique("walk")
    expected = await _insert_products(db_engine, category)

    seen = await _walk(client, category)

    assert len(seen) == PRODUCTS
    assert set(seen) == expected


async def test_walk_sees_each_product_once_while_new_ones_are_inserted(
    client: httpx.AsyncClient, db_engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    category = unique("walk")
    expected = await _insert_products(db_engine, category)
    added: set[str] = set()
    pages = 0

    async def add_products() -> None:
        # One new product through the API (the newest of all), and one whose created_at falls
        # in the middle of the range being walked.
        nonlocal pages
        pages += 1
        added.add((await create_product(client, admin_headers, category=category))["id"])
        added.update(await _insert_products(db_engine, category, 1, offset_ms=pages * 2))

    seen = await _walk(client, category, between_pages=add_products)

    assert pages >= PRODUCTS // PAGE_SIZE
    assert len(seen) == len(set(seen))
    assert expected <= set(seen)
    assert set(seen) - expected <= set(added)
