"""The contract with order-processing-service: the caller's orders, read with the caller's token.

``OrdersClient`` driven for real against Pact's mock server: the requests the order tools make
(the caller's own bearer token, matched by pattern: the orders service's verification sends a
token of the customer its provider states give orders to), and what it reads of an order (every
field ``OrderView`` keeps; the shipping address is none of them, so the pact does not ask for it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from common_libs.http_client import create_http_client
from common_libs.testing.pact import (
    Contract,
    bearer_token,
    currency,
    from_provider_state,
    money,
    uuid_like,
)
from pact import Pact, match

from app.clients.orders_client import OrderNotFound, OrdersClient
from app.models.order_models import OrderPage, OrderView

# The caller: the customer the provider states give orders to, and whose token the provider's
# verification sends in place of this one.
CUSTOMER_ID = "0b6f3c1e-8d2a-4f5b-9c7e-1a3d5f7b9e2c"
TOKEN = "the-callers-own-access-token"
ORDER_ID = "6a2e4c8f-1b3d-4e5f-8a7c-9d1e3f5a7b9c"
PRODUCT_ID = "c3e5a7b9-2d4f-4a6c-8e1b-3f5a7c9e1d2b"
TIMESTAMP = "2026-11-26T10:00:00Z"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
JSON = "application/json"
# One order a page, two orders of the caller: the page announces the next one.
LIMIT = 1
STATUS = "confirmed"
CUSTOMER_STATE = "a customer has an order"

AUTHORIZATION = bearer_token(f"Bearer {TOKEN}")


def _order_path() -> Any:
    """``/orders/{id}`` of the order the provider state made."""
    return from_provider_state(
        f"/orders/{ORDER_ID}", "/orders/${order_id}", regex=r"^/orders/[0-9a-f-]{36}$"
    )


def _order() -> dict[str, Any]:
    """An order as the assistant reads it: every field ``OrderView`` keeps, by shape."""
    return {
        "id": uuid_like(ORDER_ID),
        "user_id": match.str(CUSTOMER_ID),
        "status": STATUS,
        "items": match.each_like(
            {
                "product_id": uuid_like(PRODUCT_ID),
                "name": match.str("Walnut desk"),
                "unit_price": money("249.00"),
                "quantity": match.int(2),
                "line_total": money("498.00"),
            }
        ),
        "total": money("498.00"),
        "currency": currency("USD"),
        "created_at": match.regex(TIMESTAMP, regex=TIMESTAMP_PATTERN),
        "updated_at": match.regex(TIMESTAMP, regex=TIMESTAMP_PATTERN),
    }


def orders_are_listed(pact: Pact) -> None:
    """A page of the caller's confirmed orders: their orders and the cursor of the next page."""
    (
        pact.upon_receiving("the caller's orders are listed")
        .given(CUSTOMER_STATE, user_id=CUSTOMER_ID)
        .given(CUSTOMER_STATE, user_id=CUSTOMER_ID)
        .with_request("GET", "/orders")
        .with_query_parameter("limit", str(LIMIT))
        .with_query_parameter("status", STATUS)
        .with_header("Authorization", AUTHORIZATION)
        .will_respond_with(200)
        .with_body(
            {"items": match.each_like(_order()), "next_cursor": match.str("opaque-cursor")},
            content_type=JSON,
        )
    )


def order_is_read(pact: Pact) -> None:
    """One of the caller's orders, by its id."""
    (
        pact.upon_receiving("the caller's order is read")
        .given(CUSTOMER_STATE, user_id=CUSTOMER_ID)
        .with_request("GET", _order_path())
        .with_header("Authorization", AUTHORIZATION)
        .will_respond_with(200)
        .with_body(_order(), content_type=JSON)
    )


def other_customers_order_is_not_found(pact: Pact) -> None:
    """Someone else's order: 404, exactly as a missing one."""
    (
        pact.upon_receiving("another customer's order is asked for")
        .given("another customer has an order")
        .with_request("GET", _order_path())
        .with_header("Authorization", AUTHORIZATION)
        .will_respond_with(404)
    )


CONTRACT = Contract(
    "chat-llm-service",
    "order-processing-service",
    [orders_are_listed, order_is_read, other_customers_order_is_not_found],
)

EXPECTED_ORDER = OrderView.model_validate(
    {
        "id": ORDER_ID,
        "user_id": CUSTOMER_ID,
        "status": STATUS,
        "items": [
            {
                "product_id": PRODUCT_ID,
                "name": "Walnut desk",
                "unit_price": "249.00",
                "quantity": 2,
                "line_total": "498.00",
            }
        ],
        "total": "498.00",
        "currency": "USD",
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)


@asynccontextmanager
async def orders_client(url: str) -> AsyncIterator[OrdersClient]:
    """The real client, over the HTTP client the lifespan makes, pointed at ``url``."""
    http = create_http_client(base_url=url, timeout=2.0)
    try:
        yield OrdersClient(http, deadline_seconds=2.0)
    finally:
        await http.aclose()


async def test_a_page_has_the_callers_orders_and_the_next_cursor() -> None:
    with CONTRACT.serve(orders_are_listed) as url:
        async with orders_client(url) as client:
            page = await client.list_orders(token=TOKEN, limit=LIMIT, status=STATUS)

    assert page == OrderPage(items=[EXPECTED_ORDER], next_cursor="opaque-cursor")


async def test_the_callers_order_is_read_by_its_id() -> None:
    with CONTRACT.serve(order_is_read) as url:
        async with orders_client(url) as client:
            order = await client.get_order(token=TOKEN, order_id=ORDER_ID)

    assert order == EXPECTED_ORDER


async def test_another_customers_order_is_not_found() -> None:
    with CONTRACT.serve(other_customers_order_is_not_found) as url:
        async with orders_client(url) as client:
            with pytest.raises(OrderNotFound):
                await client.get_order(token=TOKEN, order_id=ORDER_ID)
