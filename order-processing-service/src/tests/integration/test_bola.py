"""Object-level authorization: user B can neither see nor touch user A's orders."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place


@pytest.fixture
async def order_of_a(client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller) -> str:
    """A confirmed order of user A (the ``customer``)."""
    response = await place(client, customer, order_body((catalog.add_product(), 1)))
    assert response.status_code == 201
    order_id: str = response.json()["id"]
    return order_id


async def test_user_b_reading_user_as_order_gets_404(
    client: httpx.AsyncClient, order_of_a: str, make_caller: Callable[..., Caller]
) -> None:
    user_b = make_caller()

    response = await client.get(f"/orders/{order_of_a}", headers=user_b.headers)

    assert response.status_code == 404
    assert response.json()["detail"] == "No such order."


async def test_user_b_cancelling_user_as_order_gets_404_and_it_stays_confirmed(
    client: httpx.AsyncClient,
    order_of_a: str,
    customer: Caller,
    make_caller: Callable[..., Caller],
) -> None:
    user_b = make_caller()

    response = await client.post(f"/orders/{order_of_a}/cancel", headers=user_b.headers)

    assert response.status_code == 404
    owner_view = await client.get(f"/orders/{order_of_a}", headers=customer.headers)
    assert owner_view.json()["status"] == "confirmed"


async def test_user_b_never_sees_user_as_order_in_their_list(
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    order_of_a: str,
    make_caller: Callable[..., Caller],
) -> None:
    user_b = make_caller()
    own = await place(client, user_b, order_body((catalog.add_product(), 1)))

    listed = await client.get("/orders", params={"limit": 100}, headers=user_b.headers)

    assert [order["id"] for order in listed.json()["items"]] == [own.json()["id"]]


async def test_customer_changing_a_status_gets_403(
    client: httpx.AsyncClient, order_of_a: str, customer: Caller
) -> None:
    response = await client.patch(
        f"/orders/{order_of_a}/status", json={"status": "shipped"}, headers=customer.headers
    )

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
