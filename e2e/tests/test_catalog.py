"""The catalog through the gateway: the demo catalog, browsing, searching, admin writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.shop import Account, Shop, bearer, unique

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "scripts" / "demo-catalog.json"


def _walk(shop: Shop, query: str = "") -> list[dict[str, Any]]:
    """Every product of a listing, page by page (10 a page), following ``next_cursor``."""
    products: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = shop.client.get(f"{shop.endpoints.catalog}/products?{query}", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        products += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return products


def test_up_loaded_the_demo_catalog_into_the_empty_catalog(shop: Shop) -> None:
    demo = json.loads(DEMO_CATALOG.read_text())["products"]

    listed = {product["sku"]: product for product in _walk(shop)}

    assert len(demo) >= 30
    for expected in demo:
        product = listed[expected["sku"]]
        assert product["name"] == expected["name"]
        assert product["price"] == expected["price"]
        assert re.fullmatch(r"\d+\.\d{2}", product["price"])
    categories = shop.client.get(f"{shop.endpoints.catalog}/categories").json()
    demo_categories = {product["category"] for product in demo}
    assert len(demo_categories) >= 5
    assert demo_categories <= {category["name"] for category in categories}


def test_browsing_pages_through_every_product_once_and_reads_one(shop: Shop) -> None:
    products = _walk(shop)

    ids = [product["id"] for product in products]
    assert len(ids) == len(set(ids))
    one = shop.product(ids[0])
    assert one == products[0]


def test_search_matches_name_and_description_and_filters_by_category(shop: Shop) -> None:
    url = f"{shop.endpoints.catalog}/products"

    shoes = shop.client.get(url, params={"q": "running shoes"}).json()["items"]
    grinder = shop.client.get(url, params={"q": "burr grinder"}).json()["items"]
    kitchen = shop.client.get(url, params={"category": "kitchen", "limit": 100}).json()["items"]

    assert {p["name"] for p in shoes} == {"Trail Running Shoes", "Road Running Shoes"}
    # "burr grinder" is in one name and in another product's description.
    assert {p["sku"] for p in grinder} == {"KIT-001", "KIT-006"}
    assert kitchen
    assert {p["category"] for p in kitchen} == {"kitchen"}


def test_admin_adds_a_product_that_anyone_then_finds(shop: Shop, admin: Account) -> None:
    name = f"Titanium Camping Spork {unique('spork')}"

    added = shop.add_product(admin, stock=7, name=name, price="12.90")

    found = shop.client.get(f"{shop.endpoints.catalog}/products", params={"q": name}).json()
    assert [p["id"] for p in found["items"]] == [added["id"]]
    assert found["items"][0]["stock_available"] == 7
    assert found["items"][0]["price"] == "12.90"


def test_customers_may_not_add_products(shop: Shop) -> None:
    customer = shop.new_customer()
    body = {
        "sku": unique("NOPE"),
        "name": "Not allowed",
        "description": "",
        "category": "e2e-tests",
        "price": "1.00",
        "stock": 1,
    }
    url = f"{shop.endpoints.catalog}/products"

    as_customer = shop.client.post(url, json=body, headers=bearer(customer.access_token))
    anonymous = shop.client.post(url, json=body)

    assert as_customer.status_code == 403
    assert anonymous.status_code == 401
