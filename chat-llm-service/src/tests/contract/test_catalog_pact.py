"""The contract with product-catalog-service: the product list that fills the read model.

``CatalogClient.list_products`` driven for real against Pact's mock server: the request it
sends, and the page it reads (every field the read model keeps, and the cursor of the next page).
A chat turn calls the catalog no more: it reads the read model, fed by the catalog's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common_libs.http_client import create_http_client
from common_libs.testing.pact import Contract, currency, money, uuid_like
from pact import Pact, match

from app.clients.catalog_client import CatalogClient
from app.models.catalog_models import CatalogProduct, ProductPage

PRODUCT_ID = "5c7e9a1b-3d5f-4b7d-9f1b-3d5f7b9d1f3b"
UPDATED_AT = "2026-11-26T10:00:00Z"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
# One product a page, two products in stock: the page announces the next one.
LIMIT = 1


def products_are_listed(pact: Pact) -> None:
    """A page of the product list: its products and the cursor of the next page."""
    (
        pact.upon_receiving("a page of the product list")
        .given("a product is in stock", name="Red Running Shoes", stock=12)
        .given("a product is in stock", name="Blue Running Shoes", stock=3)
        .with_request("GET", "/products")
        .with_query_parameter("limit", str(LIMIT))
        .will_respond_with(200)
        .with_body(
            {
                "items": match.each_like(
                    {
                        "id": uuid_like(PRODUCT_ID),
                        "sku": match.str("RUN-RED-42"),
                        "name": match.str("Red Running Shoes"),
                        "description": match.str("Light road shoes with a breathable upper."),
                        "category": match.str("shoes"),
                        "price": money("89.90"),
                        "currency": currency("USD"),
                        "stock_available": match.int(12),
                        "updated_at": match.regex(UPDATED_AT, regex=TIMESTAMP_PATTERN),
                    }
                ),
                "next_cursor": match.str("opaque-cursor"),
            },
            content_type="application/json",
        )
    )


CONTRACT = Contract("chat-llm-service", "product-catalog-service", [products_are_listed])


@asynccontextmanager
async def catalog_client(url: str) -> AsyncIterator[CatalogClient]:
    """The real client, over the HTTP client the lifespan makes, pointed at ``url``."""
    http = create_http_client(base_url=url, timeout=2.0)
    try:
        yield CatalogClient(http, deadline_seconds=2.0)
    finally:
        await http.aclose()


async def test_a_page_has_the_fields_the_read_model_keeps_and_the_next_cursor() -> None:
    with CONTRACT.serve(products_are_listed) as url:
        async with catalog_client(url) as client:
            page = await client.list_products(limit=LIMIT)

    assert page == ProductPage(
        items=[
            CatalogProduct.model_validate(
                {
                    "id": PRODUCT_ID,
                    "sku": "RUN-RED-42",
                    "name": "Red Running Shoes",
                    "description": "Light road shoes with a breathable upper.",
                    "category": "shoes",
                    "price": "89.90",
                    "currency": "USD",
                    "stock_available": 12,
                    "updated_at": UPDATED_AT,
                }
            )
        ],
        next_cursor="opaque-cursor",
    )
