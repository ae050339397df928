"""Listing products: filters, full-text search, keyset pages, categories."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from common_libs.pagination import encode_cursor

from tests.support.products import create_product, reservation_body, unique


async def _list(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/products", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


async def test_list_is_newest_first_with_next_cursor(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    category = unique("cat")
    for name in ("first", "second", "third"):
        await create_product(client, admin_headers, name=name, category=category)

    first = await _list(client, category=category, limit=2)
    second = await _list(client, category=category, limit=2, cursor=first["next_cursor"])

    assert _names(first) == ["third", "second"]
    assert _names(second) == ["first"]
    assert second["next_cursor"] is None


async def test_list_without_filters_starts_with_the_newest_product(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await create_product(client, admin_headers)  # a second product, whatever ran before
    product = await create_product(client, admin_headers)

    page = await _list(client, limit=1)

    assert page["items"] == [product]
    assert page["next_cursor"] is not None


async def test_price_range_is_inclusive(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    category = unique("cat")
    for price in ("9.99", "10.00", "20.00", "20.01"):
        await create_product(client, admin_headers, name=price, price=price, category=category)

    page = await _list(client, category=category, min_price="10", max_price="20.00")

    assert sorted(_names(page)) == ["10.00", "20.00"]


async def test_min_price_above_max_price_finds_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    category = unique("cat")
    await create_product(client, admin_headers, price="15.00", category=category)

    page = await _list(client, category=category, min_price="20", max_price="10")

    assert page == {"items": [], "next_cursor": None}


async def test_in_stock_filter_uses_stock_minus_held(
    client: httpx.AsyncClient, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    category = unique("cat")
    await create_product(client, admin_headers, name="plenty", stock=5, category=category)
    await create_product(client, admin_headers, name="none", stock=0, category=category)
    all_held = await create_product(client, admin_headers, name="held", stock=2, category=category)
    response = await client.post(
        "/inventory/reservations",
        json=reservation_body((all_held["id"], 2)),
        headers=service_headers,
    )
    assert response.status_code == 201

    in_stock = await _list(client, category=category, in_stock="true")
    out_of_stock = await _list(client, category=category, in_stock="false")

    assert _names(in_stock) == ["plenty"]
    assert sorted(_names(out_of_stock)) == ["held", "none"]


async def test_search_matches_name_and_description_with_stemming(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    category = unique("cat")
    await create_product(
        client, admin_headers, name="Walnut desk", description="Solid wood", category=category
    )
    await create_product(
        client, admin_headers, name="Office chair", description="Fits any desks", category=category
    )
    await create_product(
        client, admin_headers, name="Lamp", description="Warm light", category=category
    )

    page = await _list(client, category=category, q="desk")

    assert sorted(_names(page)) == ["Office chair", "Walnut desk"]


async def test_search_requires_every_word_and_supports_exclusion(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    category = unique("cat")
    await create_product(
        client, admin_headers, name="Steel water bottle", description="", category=category
    )
    await create_product(
        client, admin_headers, name="Glass water bottle", description="", category=category
    )
    await create_product(client, admin_headers, name="Steel mug", description="", category=category)

    both = await _list(client, category=category, q="steel bottle")
    excluding = await _list(client, category=category, q="bottle -glass")

    assert _names(both) == ["Steel water bottle"]
    assert _names(excluding) == ["Steel water bottle"]


async def test_search_pages_newest_first_without_duplicates(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    category = unique("cat")
    for i in range(5):
        await create_product(
            client, admin_headers, name=f"item {i}", description="tent", category=category
        )
    await create_product(client, admin_headers, name="other", description="", category=category)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"category": category, "q": "tents", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await _list(client, **params)
        seen += _names(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ["item 4", "item 3", "item 2", "item 1", "item 0"]


async def test_search_with_operators_and_stop_words_never_fails(
    client: httpx.AsyncClient,
) -> None:
    for q in ['"unclosed', "the", "-", "a & | ! (", "'); DROP TABLE products; --"]:
        response = await client.get("/products", params={"q": q})

        assert response.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"cursor": "not a cursor"},
        {"cursor": encode_cursor({"c": "yesterday", "i": "x"})},
        {"cursor": encode_cursor({"c": "2026-01-01T00:00:00", "i": "0" * 32})},
        {"cursor": encode_cursor({"c": "2026-01-01T00:00:00Z", "i": "0" * 32, "r": 1})},
        {"min_price": "-1"},
        {"max_price": "1.234"},
        {"in_stock": "maybe"},
        {"in_stock": "1"},
        {"q": ""},
        {"q": "x" * 201},
        {"category": "a\u0000b"},
    ],
    ids=lambda params: "-".join(f"{key}={str(value)[:12]}" for key, value in params.items()),
)
async def test_bad_list_parameters_answer_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/products", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == (
        "urn:fleet:common:invalid-cursor"
        if "cursor" in params
        else "urn:fleet:common:validation-failed"
    )


async def test_categories_count_live_products_by_name(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    books, games = unique("books"), unique("games")
    for _ in range(2):
        await create_product(client, admin_headers, category=books)
    gone = await create_product(client, admin_headers, category=games)
    await create_product(client, admin_headers, category=games)
    await client.delete(f"/products/{gone['id']}", headers=admin_headers)

    response = await client.get("/categories")

    assert response.status_code == 200
    names = [category["name"] for category in response.json()]
    counts = {category["name"]: category["product_count"] for category in response.json()}
    assert counts[books] == 2
    assert counts[games] == 1
    assert names.index(books) < names.index(games)
