"""Services that react to each other's events, through the gateway of the session fleet: the
assistant's own read model of the catalog follows what admins do, and a deleted account is
erased across the fleet (API.md, "Events", what reacts today)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from common_libs.testing import LlmServer, wait_until

from tests.fleet import Fleet
from tests.support.assistant import ask, made_up_word
from tests.support.shop import Account, Shop, bearer

# The session's first order is the traced one (tests/conftest.py): place ours after it.
pytestmark = pytest.mark.usefixtures("first_order")

WITHIN_SECONDS = 1.0
ERASED = "[erased]"


def _in_read_model(fleet: Fleet, product_id: str) -> tuple[str, Decimal] | None:
    """The product as the chat's read model (what grounding reads) holds it, if it does."""
    rows = fleet.fetch(
        "chat", "SELECT name, price FROM catalog_products WHERE id = $1", uuid.UUID(product_id)
    )
    return (rows[0]["name"], rows[0]["price"]) if rows else None


def _lag(condition: Callable[[], bool], change: str) -> float:
    """Seconds until the read model shows ``change`` (polled every 10 ms; given up on after
    10 s, so that a miss says by how much)."""
    return wait_until(condition, timeout=10, interval=0.01, message=f"{change} in the read model")


def test_the_assistant_follows_a_product_created_repriced_and_deleted(
    fleet: Fleet, shop: Shop, admin: Account, fake_llm: LlmServer
) -> None:
    customer = shop.new_customer()
    word = made_up_word()
    question = f"Do you sell a {word} lamp?"
    product = shop.add_product(admin, stock=4, name=f"{word.title()} desk lamp", price="41.00")
    held = (product["name"], Decimal("41.00"))
    # Within a second of the answer, the chat's read model has it, and the next turn uses it.
    lag = _lag(lambda: _in_read_model(fleet, product["id"]) == held, "created")
    assert lag <= WITHIN_SECONDS, f"created: in the read model after {lag:.2f} s"
    turn = ask(shop, fake_llm, customer, question)
    assert product["name"] in turn.prompt
    assert "41.00 USD" in turn.prompt

    repriced = shop.client.patch(
        f"{shop.endpoints.catalog}/products/{product['id']}",
        json={"price": "55.00"},
        headers=bearer(admin.access_token),
    )
    assert repriced.status_code == 200, repriced.text
    held = (product["name"], Decimal("55.00"))
    lag = _lag(lambda: _in_read_model(fleet, product["id"]) == held, "repriced")
    assert lag <= WITHIN_SECONDS, f"repriced: in the read model after {lag:.2f} s"
    turn = ask(shop, fake_llm, customer, question)
    assert "55.00 USD" in turn.prompt
    assert "41.00 USD" not in turn.prompt

    deleted = shop.client.delete(
        f"{shop.endpoints.catalog}/products/{product['id']}", headers=bearer(admin.access_token)
    )
    assert deleted.status_code == 204, deleted.text
    lag = _lag(lambda: _in_read_model(fleet, product["id"]) is None, "deleted")
    assert lag <= WITHIN_SECONDS, f"deleted: gone from the read model after {lag:.2f} s"
    turn = ask(shop, fake_llm, customer, question)
    assert product["name"] not in turn.prompt


def _refused_within(call: Callable[[], httpx.Response], since: float) -> httpx.Response:
    """Call until it answers 401; it must within a second of ``since``."""
    while True:
        response = call()
        if response.status_code == 401:
            assert time.monotonic() - since <= WITHIN_SECONDS, "refused too late"
            return response
        assert time.monotonic() - since <= WITHIN_SECONDS, (
            f"still {response.status_code} a second after the deletion: {response.text}"
        )


def test_a_deleted_account_is_erased_and_its_tokens_refused_everywhere(
    fleet: Fleet, shop: Shop, admin: Account, fake_llm: LlmServer
) -> None:
    customer = shop.new_customer()
    product = shop.add_product(admin, stock=10)
    orders = []
    for _ in range(2):
        placed = shop.place_order(customer, (product["id"], 1))
        assert placed.status_code == 201, placed.text
        orders.append(placed.json())
    assert all(order["shipping_address"]["name"] != ERASED for order in orders)
    talk = shop.client.post(
        f"{shop.endpoints.chat}/chat/generate_response",
        json={"message": "Which lanterns do you have?"},
        headers=bearer(customer.access_token),
    )
    assert talk.status_code == 200, talk.text
    conversation_id = talk.json()["conversation_id"]
    assert fleet.fetch("chat", "SELECT 1 FROM messages WHERE conversation_id = $1", conversation_id)
    token = bearer(customer.access_token)

    deleted = shop.client.delete(f"{shop.endpoints.users}/users/me", headers=token)
    assert deleted.status_code == 204, deleted.text
    since = time.monotonic()

    catalog, orders_url = shop.endpoints.catalog, shop.endpoints.orders
    calls: dict[str, Callable[[], httpx.Response]] = {
        "user-service": lambda: shop.client.get(f"{shop.endpoints.users}/users/me", headers=token),
        # A customer may not add products (403); a deleted one is not anyone any more (401).
        "product-catalog-service": lambda: shop.client.post(
            f"{catalog}/products", json={}, headers=token
        ),
        "order-processing-service": lambda: shop.client.get(f"{orders_url}/orders", headers=token),
        "chat-llm-service": lambda: shop.client.get(
            f"{shop.endpoints.chat}/chat/usage", headers=token
        ),
    }
    for service, call in calls.items():
        refused = _refused_within(call, since)
        assert refused.headers["content-type"].startswith("application/problem+json"), service
    refreshed = shop.client.post(
        f"{shop.endpoints.users}/auth/refresh", json={"refresh_token": customer.refresh_token}
    )
    assert refreshed.status_code == 401, refreshed.text

    def erased() -> bool:
        return all(
            shop.order(admin, order["id"])["shipping_address"]["name"] == ERASED for order in orders
        )

    wait_until(erased, timeout=5, message="the orders' addresses erased")
    for order in orders:
        kept = shop.order(admin, order["id"])
        address = kept["shipping_address"]
        assert {address[key] for key in ("name", "line1", "city", "postal_code")} == {ERASED}
        assert (kept["status"], kept["total"], kept["items"]) == (
            order["status"],
            order["total"],
            order["items"],
        )
    wait_until(
        lambda: (
            not fleet.fetch("chat", "SELECT 1 FROM conversations WHERE owner_id = $1", customer.id)
        ),
        timeout=5,
        message="the conversations deleted",
    )
    assert not fleet.fetch(
        "chat", "SELECT 1 FROM messages WHERE conversation_id = $1", conversation_id
    )
