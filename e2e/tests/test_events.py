"""Events through the whole fleet: what clients do through the gateway reaches the broker as the
documented envelopes (API.md, "Events"), on the documented subjects, within a second."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from common_libs.testing.events import StreamEvent, wait_for_stream_events

from tests.fleet import Fleet
from tests.support.shop import Account, Shop, bearer, unique

# The session's first order is the traced one (tests/conftest.py): place ours after it.
pytestmark = pytest.mark.usefixtures("first_order")

WITHIN_SECONDS = 1.0


def events_of(
    fleet: Fleet, stream: str, subject: str, count: int, *, action_ended: float
) -> list[StreamEvent]:
    """Wait until ``stream`` holds ``count`` events about ``subject``; they must arrive within a
    second of the response that caused the last of them."""
    events = asyncio.run(
        wait_for_stream_events(
            fleet.nats_url,
            stream,
            lambda found: sum(e.envelope.subject == subject for e in found) >= count,
            within=max(0.05, action_ended + WITHIN_SECONDS - time.monotonic()),
            message=f"{count} events about {subject} in {stream} within {WITHIN_SECONDS:g} s",
        )
    )
    return [e for e in events if e.envelope.subject == subject]


def assert_envelope(
    event: StreamEvent, *, type_: str, source: str, version: int, request_id: str
) -> dict[str, Any]:
    envelope = event.envelope
    assert event.subject == type_
    assert (envelope.type, envelope.source, envelope.version) == (type_, source, version)
    assert event.headers["Nats-Msg-Id"] == str(envelope.id)
    assert (envelope.request_id, event.headers["X-Request-ID"]) == (request_id, request_id)
    assert abs(datetime.now(UTC) - envelope.occurred_at) < timedelta(minutes=1)
    return envelope.data


def test_a_product_created_updated_and_deleted(fleet: Fleet, shop: Shop, admin: Account) -> None:
    rid = unique("evt-product")
    product = shop.add_product(admin, stock=5)
    catalog = shop.endpoints.catalog
    headers = {**bearer(admin.access_token), "X-Request-ID": rid}
    updated = shop.client.patch(
        f"{catalog}/products/{product['id']}", json={"price": "30.00"}, headers=headers
    )
    assert updated.status_code == 200, updated.text
    # Out before the delete: the catalog coalesces a product's update with a later event of it
    # in the same relay pass (API.md), and this test checks the update's own event.
    events_of(fleet, "CATALOG", product["id"], 2, action_ended=time.monotonic())
    deleted = shop.client.delete(f"{catalog}/products/{product['id']}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    ended = time.monotonic()

    events = events_of(fleet, "CATALOG", product["id"], 3, action_ended=ended)

    assert [e.envelope.type for e in events] == [
        "catalog.product.created",
        "catalog.product.updated",
        "catalog.product.deleted",
    ]
    assert events[0].envelope.data == product
    source = "product-catalog-service"
    data = assert_envelope(
        events[1], type_="catalog.product.updated", source=source, version=2, request_id=rid
    )
    assert data == updated.json()
    data = assert_envelope(
        events[2], type_="catalog.product.deleted", source=source, version=3, request_id=rid
    )
    assert data == {"id": product["id"]}


def test_an_order_placed_cancelled_and_another_shipped(
    fleet: Fleet, shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=5)
    customer = shop.new_customer()
    rid = unique("evt-order")
    source = "order-processing-service"
    placed = shop.place_order(customer, (product["id"], 2), request_id=rid)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    orders = shop.endpoints.orders
    cancelled = shop.client.post(
        f"{orders}/orders/{order['id']}/cancel",
        headers={**bearer(customer.access_token), "X-Request-ID": rid},
    )
    assert cancelled.status_code == 200, cancelled.text
    ended = time.monotonic()

    events = events_of(fleet, "ORDERS", order["id"], 2, action_ended=ended)

    confirmed = assert_envelope(
        events[0], type_="orders.order.confirmed", source=source, version=1, request_id=rid
    )
    assert confirmed["status"] == "confirmed"
    assert "shipping_address" not in confirmed
    assert {k: v for k, v in order.items() if k != "shipping_address"} == confirmed
    data = assert_envelope(
        events[1], type_="orders.order.cancelled", source=source, version=2, request_id=rid
    )
    assert data["status"] == "cancelled"

    second = shop.place_order(customer, (product["id"], 1), request_id=rid).json()
    shipped = shop.client.patch(
        f"{orders}/orders/{second['id']}/status",
        json={"status": "shipped"},
        headers={**bearer(admin.access_token), "X-Request-ID": rid},
    )
    assert shipped.status_code == 200, shipped.text
    ended = time.monotonic()
    events = events_of(fleet, "ORDERS", second["id"], 2, action_ended=ended)
    data = assert_envelope(
        events[1], type_="orders.order.shipped", source=source, version=2, request_id=rid
    )
    assert data["status"] == "shipped"
    # The catalog said so too: its last event about the product has the stock the orders left.
    left = shop.product(product["id"])["stock_available"]
    assert left == 4
    asyncio.run(
        wait_for_stream_events(
            fleet.nats_url,
            "CATALOG",
            lambda found: (
                [
                    e.envelope.data.get("stock_available")
                    for e in found
                    if e.envelope.subject == product["id"]
                ][-1:]
                == [left]
            ),
            within=WITHIN_SECONDS,
            message="the catalog's event with the stock left",
        )
    )


def test_a_user_registered_and_deleted(fleet: Fleet, shop: Shop) -> None:
    rid = unique("evt-user")
    email = f"{unique('events')}@example.com"
    registered = shop.client.post(
        f"{shop.endpoints.users}/users",
        json={"email": email, "password": "events-password-1", "full_name": "Ada Lovelace"},
        headers={"X-Request-ID": rid},
    )
    assert registered.status_code == 201, registered.text
    user = registered.json()
    account = shop.account(email, "events-password-1", user_id=user["id"])
    gone = shop.client.delete(
        f"{shop.endpoints.users}/users/me",
        headers={**bearer(account.access_token), "X-Request-ID": rid},
    )
    assert gone.status_code == 204, gone.text
    ended = time.monotonic()

    events = events_of(fleet, "USERS", user["id"], 2, action_ended=ended)

    data = assert_envelope(
        events[0], type_="users.user.registered", source="user-service", version=1, request_id=rid
    )
    assert data == {"id": user["id"], "role": "customer"}
    data = assert_envelope(
        events[1], type_="users.user.deleted", source="user-service", version=2, request_id=rid
    )
    assert data == {"id": user["id"]}
    for event in events:
        assert email not in event.envelope.model_dump_json()
        assert "Lovelace" not in event.envelope.model_dump_json()
