"""Idempotency-Key: replays, a different body, requests in flight, and concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
from common_libs.testing import eventually

from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place


async def test_same_key_and_body_twice_returns_the_same_order_and_reserves_once(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=10)
    body = order_body((product, 2))

    first = await place(client, customer, body, key="same-key")
    second = await place(client, customer, body, key="same-key")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    order_id = uuid.UUID(first.json()["id"])
    assert catalog.count("reserve", order_id) == 1
    assert catalog.available(product) == 8


async def test_same_key_with_a_different_body_answers_422(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=10)
    await place(client, customer, order_body((product, 1)), key="reused")

    response = await place(client, customer, order_body((product, 2)), key="reused")

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:common:idempotency-key-reused"
    assert "different request body" in response.json()["detail"]
    assert catalog.available(product) == 9


async def test_body_with_reordered_fields_counts_as_the_same_request(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product()
    body = order_body((product, 1))
    reordered = {"shipping_address": dict(reversed(body["shipping_address"].items())), **body}

    first = await place(client, customer, body, key="reordered")
    second = await place(client, customer, reordered, key="reordered")

    assert second.json()["id"] == first.json()["id"]


async def test_replayed_refusal_returns_the_same_409_without_asking_the_catalog(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    scarce = catalog.add_product(stock=0)
    body = order_body((scarce, 1))
    first = await place(client, customer, body, key="refused")
    listed = (await client.get("/orders", headers=customer.headers)).json()["items"]
    order_id = uuid.UUID(listed[0]["id"])

    second = await place(client, customer, body, key="refused")

    assert (first.status_code, second.status_code) == (409, 409)
    assert second.json()["type"] == first.json()["type"] == "urn:fleet:orders:out-of-stock"
    assert second.json()["product_id"] == first.json()["product_id"] == str(scarce)
    assert second.json()["detail"] == first.json()["detail"]
    assert catalog.count("reserve", order_id) == 1


async def test_same_key_from_two_users_makes_two_orders(
    client: httpx.AsyncClient, catalog: CatalogStub, make_caller: Callable[..., Caller]
) -> None:
    body = order_body((catalog.add_product(), 1))

    first = await place(client, make_caller(), body, key="shared-key")
    second = await place(client, make_caller(), body, key="shared-key")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


async def test_request_while_the_first_is_in_flight_answers_409(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=10)
    body = order_body((product, 1))
    catalog.fail("reserve", "gate")
    first = asyncio.create_task(place(client, customer, body, key="in-flight"))
    await eventually(lambda: catalog.available(product) == 9, message="stock held")

    second = await place(client, customer, body, key="in-flight")
    catalog.open_gate()

    assert second.status_code == 409
    assert second.json()["type"] == "urn:fleet:common:idempotency-key-in-flight"
    assert second.headers["retry-after"] == "1"
    assert (await first).status_code == 201


async def test_ten_concurrent_requests_with_one_key_make_one_order(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=100)
    body = order_body((product, 1))

    responses = await asyncio.gather(
        *(place(client, customer, body, key="concurrent") for _ in range(10))
    )

    statuses = sorted(response.status_code for response in responses)
    created = {response.json()["id"] for response in responses if response.status_code == 201}
    assert set(statuses) <= {201, 409}
    assert len(created) == 1
    listed = (await client.get("/orders", headers=customer.headers)).json()["items"]
    assert [order["id"] for order in listed] == list(created)
    assert catalog.count("reserve", uuid.UUID(created.pop())) == 1
    assert catalog.available(product) == 99


async def test_retry_after_a_503_starts_a_fresh_attempt_with_the_same_key(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=10)
    body = order_body((product, 1))
    catalog.fail("reserve", "error")
    unavailable = await place(client, customer, body, key="after-503")
    catalog.heal()

    retried = await place(client, customer, body, key="after-503")

    assert unavailable.status_code == 503
    assert retried.status_code == 201
    assert retried.json()["status"] == "confirmed"
    assert catalog.available(product) == 9
