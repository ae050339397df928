"""Cancelling (owner or admin, only from confirmed) and the admin's status moves."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.services.reconciler import Reconciler
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place


async def _order(
    client: httpx.AsyncClient, catalog: CatalogStub, caller: Caller, stock: int = 10
) -> tuple[str, uuid.UUID]:
    product = catalog.add_product(stock=stock)
    response = await place(client, caller, order_body((product, 3)))
    order_id: str = response.json()["id"]
    return order_id, product


async def _set_status(
    client: httpx.AsyncClient, admin: Caller, order_id: str, status: str
) -> httpx.Response:
    return await client.patch(
        f"/orders/{order_id}/status", json={"status": status}, headers=admin.headers
    )


async def test_owner_cancels_a_confirmed_order_and_its_stock_returns(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    order_id, product = await _order(client, catalog, customer)
    assert catalog.on_hand(product) == 7

    response = await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert catalog.status(uuid.UUID(order_id)) == "released"
    assert catalog.on_hand(product) == 10


async def test_admin_cancels_a_customers_order(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller
) -> None:
    order_id, _ = await _order(client, catalog, customer)

    response = await client.post(f"/orders/{order_id}/cancel", headers=admin.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


async def test_cancelling_twice_answers_409(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    order_id, product = await _order(client, catalog, customer)
    await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)

    response = await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)

    assert response.status_code == 409
    assert response.json()["type"] == "urn:fleet:orders:order-state-conflict"
    assert "cancelled" in response.json()["detail"]
    assert catalog.on_hand(product) == 10


async def test_cancelling_a_failed_order_answers_409(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    await place(client, customer, order_body((catalog.add_product(stock=0), 1)))
    failed = (await client.get("/orders", headers=customer.headers)).json()["items"][0]

    response = await client.post(f"/orders/{failed['id']}/cancel", headers=customer.headers)

    assert response.status_code == 409


async def test_cancelling_a_shipped_order_answers_409(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller
) -> None:
    order_id, product = await _order(client, catalog, customer)
    await _set_status(client, admin, order_id, "shipped")

    response = await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)

    assert response.status_code == 409
    assert catalog.on_hand(product) == 7


async def test_cancel_stays_done_when_the_catalog_is_down_and_the_reconciler_releases_later(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, reconciler: Reconciler
) -> None:
    order_id, product = await _order(client, catalog, customer)
    catalog.fail("release", "error")

    response = await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)
    catalog.heal()
    await reconciler.run_once()

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert catalog.on_hand(product) == 10


async def test_admin_moves_an_order_to_shipped_then_delivered(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller
) -> None:
    order_id, _ = await _order(client, catalog, customer)

    shipped = await _set_status(client, admin, order_id, "shipped")
    delivered = await _set_status(client, admin, order_id, "delivered")

    assert (shipped.status_code, shipped.json()["status"]) == (200, "shipped")
    assert (delivered.status_code, delivered.json()["status"]) == (200, "delivered")
    assert delivered.json()["updated_at"] >= shipped.json()["updated_at"]


@pytest.mark.parametrize("target", ["delivered", "confirmed", "pending", "failed", "cancelled"])
async def test_other_moves_from_confirmed_answer_409(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller, target: str
) -> None:
    order_id, _ = await _order(client, catalog, customer)

    response = await _set_status(client, admin, order_id, target)

    assert response.status_code == 409
    current = await client.get(f"/orders/{order_id}", headers=admin.headers)
    assert current.json()["status"] == "confirmed"


async def test_moving_a_delivered_order_back_answers_409(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller
) -> None:
    order_id, _ = await _order(client, catalog, customer)
    for status in ("shipped", "delivered"):
        await _set_status(client, admin, order_id, status)

    response = await _set_status(client, admin, order_id, "shipped")

    assert response.status_code == 409


async def test_unknown_status_value_answers_422(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller
) -> None:
    order_id, _ = await _order(client, catalog, customer)

    response = await _set_status(client, admin, order_id, "teleported")

    assert response.status_code == 422


async def test_status_change_of_an_unknown_order_answers_404(
    client: httpx.AsyncClient, admin: Caller
) -> None:
    response = await _set_status(client, admin, str(uuid.uuid4()), "shipped")

    assert response.status_code == 404
