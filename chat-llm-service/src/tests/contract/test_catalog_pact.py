"""The contract with product-catalog-service: the product search that grounds the assistant.

``CatalogClient.search_products`` driven for real against Pact's mock server: the query it
sends, and the fields of a product it puts into the prompt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common_libs.http_client import create_http_client
from common_libs.testing.pact import Contract, currency, money, uuid_like
from pact import Pact, match

from app.clients.catalog_client import CatalogClient, CatalogProduct

PRODUCT_ID = "5c7e9a1b-3d5f-4b7d-9f1b-3d5f7b9d1f3b"
QUERY = "red running shoes"
LIMIT = 3


def products_are_found(pact: Pact) -> None:
    """A search whose words a product's name holds: a page with that product."""
    (
        pact.upon_receiving("a product search")
        .given("a product is in stock", name="Red Running Shoes", stock=12)
        .with_request("GET", "/products")
        .with_query_parameter("q", QUERY)
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
                    }
                )
            },
            content_type="application/json",
        )
    )


CONTRACT = Contract("chat-llm-service", "product-catalog-service", [products_are_found])


@asynccontextmanager
async def catalog_client(url: str) -> AsyncIterator[CatalogClient]:
    """The real client, over the HTTP client the lifespan makes, pointed at ``url``."""
    http = create_http_client(base_url=url, timeout=2.0)
    try:
        yield CatalogClient(http, deadline_seconds=2.0)
    finally:
        await http.aclose()


async def test_search_finds_products_with_the_fields_the_prompt_uses() -> None:
    with CONTRACT.serve(products_are_found) as url:
        async with catalog_client(url) as client:
            products = await client.search_products(query=QUERY, limit=LIMIT)

    assert products == [
        CatalogProduct(
            id=PRODUCT_ID,
            sku="RUN-RED-42",
            name="Red Running Shoes",
            description="Light road shoes with a breathable upper.",
            category="shoes",
            price="89.90",
            currency="USD",
            stock_available=12,
        )
    ]
