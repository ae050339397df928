"""The read model's search, the grounding of every chat turn: by name and by description words,
the better match first, a misspelling through trigram similarity.

Each test writes its products in a transaction of its own that starts by hiding every other
product, and rolls it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import catalog_repository
from app.models.catalog_models import CatalogProduct
from tests.support.servers import product


@pytest.fixture
async def connection(app: FastAPI) -> AsyncIterator[AsyncConnection]:
    """A connection of the app's pool, in a transaction rolled back after the test."""
    async with app.state.engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text("DELETE FROM catalog_products"))
        yield connection
        await transaction.rollback()


async def _given(connection: AsyncConnection, *products: dict[str, Any]) -> None:
    for item in products:
        await catalog_repository.upsert_product(connection, CatalogProduct.model_validate(item))


async def _names(connection: AsyncConnection, terms: Sequence[str], limit: int = 5) -> list[str]:
    found = await catalog_repository.search_products(connection, terms=terms, limit=limit)
    return [item.name for item in found]


async def test_search_finds_a_product_by_a_word_of_its_name(connection: AsyncConnection) -> None:
    await _given(
        connection,
        product("Steel Kettle", description="Boils 1.7 l of water"),
        product("Desk Lamp", description="Warm light for reading"),
    )

    assert await _names(connection, ["kettles"]) == ["Steel Kettle"]


async def test_search_finds_a_product_by_words_of_its_description(
    connection: AsyncConnection,
) -> None:
    await _given(
        connection,
        product("Steel Kettle", description="Boils 1.7 l of water in two minutes"),
        product("Desk Lamp", description="Warm light for reading"),
    )

    assert await _names(connection, ["boiling", "water"]) == ["Steel Kettle"]


async def test_search_ranks_a_product_with_every_word_first_then_its_name_over_description(
    connection: AsyncConnection,
) -> None:
    await _given(
        connection,
        product("Road Runner", description="Light shoes for the road"),
        product("Trail Map", description="The park's paths on paper"),
        product("Trail Running Shoes", description="Grippy soles for muddy ground"),
    )

    assert await _names(connection, ["trail", "running", "shoes"]) == [
        "Trail Running Shoes",
        "Trail Map",
        "Road Runner",
    ]


async def test_search_puts_products_in_stock_first_among_equal_matches(
    connection: AsyncConnection,
) -> None:
    await _given(
        connection,
        product("Blue Umbrella", stock=0),
        product("Red Umbrella", stock=4),
    )

    assert await _names(connection, ["umbrella"]) == ["Red Umbrella", "Blue Umbrella"]


async def test_search_finds_a_misspelled_product_word_through_its_name(
    connection: AsyncConnection,
) -> None:
    await _given(
        connection,
        product("Wireless Headphones", description="Noise cancelling, 30 h battery"),
        product("Phone Case", description="Fits most phones"),
    )

    assert await _names(connection, ["headphnoes"]) == ["Wireless Headphones"]
    assert await _names(connection, ["wireles", "headphnoes"]) == ["Wireless Headphones"]
    # A word some product has is no misspelling, however close to another name ("headphones").
    assert await _names(connection, ["phone"]) == ["Phone Case"]


async def test_search_fills_up_exact_matches_with_close_names_only_after_them(
    connection: AsyncConnection,
) -> None:
    await _given(
        connection,
        product("Wireless Mouse", description="Quiet clicks"),
        product("Wireless Headphones", description="Noise cancelling"),
    )

    assert await _names(connection, ["mouse", "headphnoes"]) == [
        "Wireless Mouse",
        "Wireless Headphones",
    ]
    assert await _names(connection, ["mouse", "headphnoes"], limit=1) == ["Wireless Mouse"]


async def test_search_returns_at_most_the_limit_and_nothing_without_terms(
    connection: AsyncConnection,
) -> None:
    await _given(connection, *(product(f"Camera {number}") for number in range(4)))

    assert len(await _names(connection, ["camera"], limit=3)) == 3
    assert await _names(connection, []) == []
    assert await _names(connection, ["bicycle"]) == []
