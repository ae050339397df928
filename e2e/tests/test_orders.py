"""Orders through the gateway: idempotent placement, cancellation, shipping and delivery."""

from __future__ import annotations

import pytest

from tests.support.shop import Account, Shop, bearer, unique

pytestmark = pytest.mark.usefixtures("first_order")


def test_replaying_an_idempotency_key_returns_the_same_order_and_takes_stock_once(
    shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=10)
    customer = shop.new_customer()
    key = unique("order")

    first = shop.place_order(customer, (product["id"], 3), key=key)
    replay = shop.place_order(customer, (product["id"], 3), key=key)

    assert first.status_code == 201, first.text
    order = first.json()
    assert order["status"] == "confirmed"
    assert order["total"] == "73.50"
    assert replay.status_code == 201
    assert replay.json()["id"] == order["id"]
    assert shop.product(product["id"])["stock_available"] == 7


def test_cancelling_a_confirmed_order_returns_its_stock(shop: Shop, admin: Account) -> None:
    product = shop.add_product(admin, stock=4)
    customer = shop.new_customer()
    order = shop.place_order(customer, (product["id"], 4)).json()
    assert shop.product(product["id"])["stock_available"] == 0

    cancelled = shop.client.post(
        f"{shop.endpoints.orders}/orders/{order['id']}/cancel",
        headers=bearer(customer.access_token),
    )

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert shop.product(product["id"])["stock_available"] == 4


def test_admin_ships_and_delivers_an_order_that_the_customer_then_sees(
    shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=2)
    customer = shop.new_customer()
    order = shop.place_order(customer, (product["id"], 1)).json()
    status_url = f"{shop.endpoints.orders}/orders/{order['id']}/status"

    by_customer = shop.client.patch(
        status_url, json={"status": "shipped"}, headers=bearer(customer.access_token)
    )
    shipped = shop.client.patch(
        status_url, json={"status": "shipped"}, headers=bearer(admin.access_token)
    )
    delivered = shop.client.patch(
        status_url, json={"status": "delivered"}, headers=bearer(admin.access_token)
    )

    assert by_customer.status_code == 403
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "shipped"
    assert delivered.status_code == 200, delivered.text
    assert shop.order(customer, order["id"])["status"] == "delivered"


def test_another_customers_order_answers_404(shop: Shop, admin: Account) -> None:
    product = shop.add_product(admin, stock=1)
    owner, other = shop.new_customer(), shop.new_customer()
    order = shop.place_order(owner, (product["id"], 1)).json()

    response = shop.client.get(
        f"{shop.endpoints.orders}/orders/{order['id']}", headers=bearer(other.access_token)
    )

    assert response.status_code == 404
