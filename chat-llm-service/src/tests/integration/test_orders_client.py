"""``OrdersClient`` against the stub orders service (a real uvicorn process): the caller's own
token forwarded, the caller's orders read without their shipping address, and every failure
mapped to ``OrderNotFound`` or ``OrdersUnavailable`` without the token in its message."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
from common_libs.http_client import create_http_client
from common_libs.testing import TestTokenIssuer, free_port
from fastapi import FastAPI

from app.clients.orders_client import OrderNotFound, OrdersClient, OrdersUnavailable
from app.services.context import ChatServices
from tests.support.servers import OrdersStub, order

DEADLINE_SECONDS = 0.5


@asynccontextmanager
async def orders_client(
    url: str, *, deadline_seconds: float = DEADLINE_SECONDS
) -> AsyncIterator[OrdersClient]:
    """The real client, over the HTTP client the lifespan makes, pointed at ``url``."""
    http = create_http_client(base_url=url, timeout=deadline_seconds)
    try:
        yield OrdersClient(http, deadline_seconds=deadline_seconds)
    finally:
        await http.aclose()


@pytest.fixture
def customer(issuer: TestTokenIssuer) -> tuple[str, str]:
    """``(user id, access token)`` of a customer of this test alone."""
    user_id = str(uuid.uuid4())
    return user_id, issuer.token(subject=user_id)


async def test_list_has_the_callers_orders_only_without_their_shipping_address(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    user_id, token = customer
    mine = order(user_id, lines=(("Trail shoe", "89.90", 2), ("Socks", "5.00", 3)))
    await orders.set_orders([mine, order(str(uuid.uuid4()))])

    async with orders_client(orders.base_url) as client:
        page = await client.list_orders(token=token, limit=10)

    assert [str(view.id) for view in page.items] == [mine["id"]]
    [view] = page.items
    assert (view.user_id, view.status, view.total, view.currency) == (
        user_id,
        "confirmed",
        Decimal("194.80"),
        "USD",
    )
    assert [(item.name, item.unit_price, item.line_total) for item in view.items] == [
        ("Trail shoe", Decimal("89.90"), Decimal("179.80")),
        ("Socks", Decimal("5.00"), Decimal("15.00")),
    ]
    assert "shipping_address" not in view.model_dump()
    assert page.next_cursor is None


async def test_list_sends_the_limit_the_status_and_the_callers_own_token(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    user_id, token = customer
    await orders.set_orders([order(user_id, status="shipped"), order(user_id), order(user_id)])

    async with orders_client(orders.base_url) as client:
        page = await client.list_orders(token=token, limit=1, status="confirmed")

    assert [view.status for view in page.items] == ["confirmed"]
    assert page.next_cursor is not None
    assert await orders.requests() == [
        {
            "method": "GET",
            "path": "/orders",
            "query": {"limit": "1", "status": "confirmed"},
            "authorization": f"Bearer {token}",
        }
    ]


async def test_orders_not_yet_priced_are_listed_with_null_prices(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    user_id, token = customer
    await orders.set_orders([order(user_id, status="failed"), order(user_id, status="pending")])

    async with orders_client(orders.base_url) as client:
        page = await client.list_orders(token=token, limit=10)

    assert [(view.status, view.total, view.items[0].unit_price) for view in page.items] == [
        ("failed", None, None),
        ("pending", None, None),
    ]


@pytest.mark.parametrize(("limit", "status"), [(0, None), (101, None), (10, "lost")])
async def test_a_limit_or_status_the_api_does_not_take_is_refused_before_any_call(
    orders: OrdersStub, customer: tuple[str, str], limit: int, status: str | None
) -> None:
    async with orders_client(orders.base_url) as client:
        with pytest.raises(ValueError, match="must be"):
            await client.list_orders(token=customer[1], limit=limit, status=status)

    assert await orders.requests() == []


async def test_get_reads_the_callers_order_with_their_own_token(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    user_id, token = customer
    mine = order(user_id, status="delivered")
    await orders.set_orders([mine])

    async with orders_client(orders.base_url) as client:
        view = await client.get_order(token=token, order_id=mine["id"])

    assert (str(view.id), view.status, view.total) == (mine["id"], "delivered", Decimal("89.90"))
    assert "shipping_address" not in view.model_dump()
    [request] = await orders.requests()
    assert (request["path"], request["authorization"]) == (
        f"/orders/{mine['id']}",
        f"Bearer {token}",
    )


async def test_another_users_order_is_not_found(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    theirs = order(str(uuid.uuid4()))
    await orders.set_orders([theirs])

    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrderNotFound):
            await client.get_order(token=customer[1], order_id=theirs["id"])


async def test_a_missing_order_is_not_found(orders: OrdersStub, customer: tuple[str, str]) -> None:
    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrderNotFound):
            await client.get_order(token=customer[1], order_id=str(uuid.uuid4()))


async def test_a_malformed_id_is_not_found(orders: OrdersStub, customer: tuple[str, str]) -> None:
    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrderNotFound):
            await client.get_order(token=customer[1], order_id="my last order")

    [request] = await orders.requests()
    assert request["path"] == "/orders/my last order"


async def test_a_refused_token_makes_the_orders_unavailable_without_naming_it(
    orders: OrdersStub,
) -> None:
    token = "not-a-jwt-but-a-secret"

    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrdersUnavailable, match="401") as refused:
            await client.list_orders(token=token, limit=5)

    assert token not in str(refused.value)


async def test_a_forbidden_answer_makes_the_orders_unavailable(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    await orders.set_mode("error", status=403)

    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrdersUnavailable, match="403") as refused:
            await client.get_order(token=customer[1], order_id=str(uuid.uuid4()))

    assert customer[1] not in str(refused.value)


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_makes_the_orders_unavailable(
    orders: OrdersStub, customer: tuple[str, str], status: int
) -> None:
    await orders.set_mode("error", status=status)

    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrdersUnavailable, match=str(status)):
            await client.list_orders(token=customer[1], limit=5)
        with pytest.raises(OrdersUnavailable, match=str(status)):
            await client.get_order(token=customer[1], order_id=str(uuid.uuid4()))


async def test_an_unparseable_body_makes_the_orders_unavailable(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    await orders.set_mode("bad_body")

    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrdersUnavailable, match="unparseable body") as refused:
            await client.get_order(token=customer[1], order_id=str(uuid.uuid4()))

    assert customer[1] not in str(refused.value)
    assert "not the orders API" not in str(refused.value)


async def test_a_body_of_another_shape_makes_the_orders_unavailable_without_its_data(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    user_id, token = customer
    broken = {**order(user_id), "created_at": "yesterday"}
    await orders.set_orders([broken])

    async with orders_client(orders.base_url) as client:
        with pytest.raises(OrdersUnavailable, match="created_at") as refused:
            await client.list_orders(token=token, limit=5)

    assert "Analytical Row" not in str(refused.value)


async def test_a_slow_orders_service_is_unavailable_at_the_deadline(
    orders: OrdersStub, customer: tuple[str, str]
) -> None:
    await orders.set_mode("hang")
    started = time.monotonic()

    async with orders_client(orders.base_url, deadline_seconds=0.3) as client:
        with pytest.raises(OrdersUnavailable, match=r"within 0\.3 s"):
            await client.list_orders(token=customer[1], limit=5)

    assert time.monotonic() - started < 2.0


async def test_an_unreachable_orders_service_is_unavailable(customer: tuple[str, str]) -> None:
    async with orders_client(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(OrdersUnavailable, match="unreachable") as refused:
            await client.get_order(token=customer[1], order_id=str(uuid.uuid4()))

    assert customer[1] not in str(refused.value)


async def test_the_apps_client_reads_the_configured_orders_service(
    app: FastAPI, orders: OrdersStub, customer: tuple[str, str]
) -> None:
    user_id, token = customer
    mine = order(user_id)
    await orders.set_orders([mine])
    services: ChatServices = app.state.chat_services

    view = await services.orders.get_order(token=token, order_id=mine["id"])

    assert str(view.id) == mine["id"]
