"""Each status an order reaches is published once, as ``orders.order.<status>``, on the real
broker: the envelope of API.md, the order without its shipping address, written with the change.

Every test reads the order's events once none of them waits in the outbox
(:func:`tests.support.events.published_events`), so a list that holds no extra event proves that
none was written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from common_libs.testing import NatsServer, eventually
from common_libs.testing.events import stream_events
from fastapi import FastAPI
from sqlalchemy import update

from app.config import Settings
from app.db.session import unit_of_work
from app.db.tables import Order
from app.services.reconciler import Reconciler
from tests.integration.test_reconciler import crashed_order
from tests.support.apps import running_app
from tests.support.catalog_stub import CatalogStub
from tests.support.events import published_events, summary
from tests.support.orders import ADDRESS, Caller, order_body, place

# A traceparent as a client (or the gateway) sends it: version, trace id, parent id, flags.
TRACEPARENT = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


async def _confirmed(client: httpx.AsyncClient, catalog: CatalogStub, caller: Caller) -> str:
    response = await place(client, caller, order_body((catalog.add_product(stock=10), 2)))
    assert response.status_code == 201
    order_id: str = response.json()["id"]
    return order_id


async def _set_status(
    client: httpx.AsyncClient, admin: Caller, order_id: str, status: str
) -> httpx.Response:
    return await client.patch(
        f"/orders/{order_id}/status", json={"status": status}, headers=admin.headers
    )


def _without_address(order: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in order.items() if name != "shipping_address"}


async def test_placed_order_publishes_confirmed_with_the_documented_envelope(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    nats_server: NatsServer,
) -> None:
    request_id = f"events-{uuid.uuid4().hex}"
    headers = {
        **customer.headers,
        "Idempotency-Key": str(uuid.uuid4()),
        "X-Request-ID": request_id,
        "traceparent": TRACEPARENT,
    }
    body = order_body((catalog.add_product(price="2.50", stock=10), 2))

    response = await client.post("/orders", json=body, headers=headers)

    order = response.json()
    (event,) = await published_events(app.state.engine, nats_server.url, order["id"])
    envelope = event.envelope
    assert event.subject == "orders.order.confirmed"
    assert (envelope.type, envelope.source) == (
        "orders.order.confirmed",
        "order-processing-service",
    )
    assert (envelope.subject, envelope.version) == (order["id"], 1)
    assert envelope.request_id == request_id
    assert envelope.data == _without_address(order)
    assert envelope.data["status"] == "confirmed"
    assert envelope.data["total"] == "5.00"
    assert event.headers["Nats-Msg-Id"] == str(envelope.id)
    assert event.headers["X-Request-ID"] == request_id
    assert event.headers["traceparent"] == TRACEPARENT
    assert abs(envelope.occurred_at - datetime.now(UTC)).total_seconds() < 60


@pytest.mark.parametrize(
    ("fault", "answer"), [("sold out", 409), ("catalog down", 503)], ids=["refused", "abandoned"]
)
async def test_order_that_cannot_be_placed_publishes_failed(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    nats_server: NatsServer,
    fault: str,
    answer: int,
) -> None:
    product = catalog.add_product(stock=0 if fault == "sold out" else 10)
    if fault == "catalog down":
        catalog.fail("reserve", "error")

    response = await place(client, customer, order_body((product, 1)))

    assert response.status_code == answer
    order_id = (await client.get("/orders", headers=customer.headers)).json()["items"][0]["id"]
    (event,) = await published_events(app.state.engine, nats_server.url, order_id)
    assert (event.envelope.type, event.envelope.version) == ("orders.order.failed", 1)
    assert event.envelope.data["status"] == "failed"
    assert event.envelope.data["items"] == [
        {
            "product_id": str(product),
            "name": None,
            "unit_price": None,
            "quantity": 1,
            "line_total": None,
        }
    ]


async def test_cancelled_order_publishes_cancelled_as_version_2(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    nats_server: NatsServer,
) -> None:
    order_id = await _confirmed(client, catalog, customer)

    cancelled = await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)

    events = await published_events(app.state.engine, nats_server.url, order_id)
    assert summary(events) == [("orders.order.confirmed", 1), ("orders.order.cancelled", 2)]
    assert events[1].envelope.data == _without_address(cancelled.json())


async def test_shipped_then_delivered_publish_with_increasing_versions(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    admin: Caller,
    nats_server: NatsServer,
) -> None:
    order_id = await _confirmed(client, catalog, customer)

    shipped = await _set_status(client, admin, order_id, "shipped")
    delivered = await _set_status(client, admin, order_id, "delivered")

    events = await published_events(app.state.engine, nats_server.url, order_id)
    assert summary(events) == [
        ("orders.order.confirmed", 1),
        ("orders.order.shipped", 2),
        ("orders.order.delivered", 3),
    ]
    assert events[1].envelope.data == _without_address(shipped.json())
    assert events[2].envelope.data == _without_address(delivered.json())
    assert events[2].envelope.request_id is not None


async def test_retry_with_the_same_key_publishes_no_second_event(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    nats_server: NatsServer,
) -> None:
    body = order_body((catalog.add_product(stock=10), 1))
    first = await place(client, customer, body, key="events-retry")

    retried = await place(client, customer, body, key="events-retry")

    assert (first.status_code, retried.status_code) == (201, 201)
    assert retried.json()["id"] == first.json()["id"]
    events = await published_events(app.state.engine, nats_server.url, first.json()["id"])
    assert summary(events) == [("orders.order.confirmed", 1)]


async def test_rejected_transitions_publish_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    admin: Caller,
    nats_server: NatsServer,
) -> None:
    order_id = await _confirmed(client, catalog, customer)
    for status in ("shipped", "delivered"):
        await _set_status(client, admin, order_id, status)

    cancel = await client.post(f"/orders/{order_id}/cancel", headers=customer.headers)
    back = await _set_status(client, admin, order_id, "shipped")

    assert (cancel.status_code, back.status_code) == (409, 409)
    events = await published_events(app.state.engine, nats_server.url, order_id)
    assert [event.envelope.type for event in events] == [
        "orders.order.confirmed",
        "orders.order.shipped",
        "orders.order.delivered",
    ]


@pytest.mark.parametrize(("stock", "outcome"), [(10, "confirmed"), (0, "failed")])
async def test_reconciler_settling_a_crashed_order_publishes_its_outcome(
    app: FastAPI,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
    nats_server: NatsServer,
    stock: int,
    outcome: str,
) -> None:
    order_id = await crashed_order(
        app, customer, [(catalog.add_product(stock=stock), 1)], key=f"events-{uuid.uuid4()}"
    )

    await reconciler.run_once()
    await reconciler.run_once()

    events = await published_events(app.state.engine, nats_server.url, str(order_id))
    assert summary(events) == [(f"orders.order.{outcome}", 1)]
    assert events[0].envelope.data["status"] == outcome


async def test_request_and_reconciler_settling_one_order_publish_one_event(
    app: FastAPI,
    catalog: CatalogStub,
    customer: Caller,
    service_settings: Callable[..., Settings],
    nats_server: NatsServer,
) -> None:
    product = catalog.add_product(stock=10)
    # A deadline long enough for the request to wait at the catalog while the reconciler settles.
    settings = service_settings(catalog_deadline_seconds=10, pending_max_age_seconds=25)
    async with running_app(settings) as (replica, replica_client):
        # The stock is sold, the answer held back: the request waits with its order pending
        # (the reconciler's call for the same order is answered).
        catalog.fail("reserve", "gate", calls=1)
        placing = asyncio.create_task(place(replica_client, customer, order_body((product, 1))))
        await eventually(lambda: _committed(catalog, product), message="the commit")
        (order_id,) = _committed(catalog, product)
        # Older than any order another test left pending: the pass takes this one first.
        async with unit_of_work(app.state.engine) as connection:
            await connection.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(created_at=datetime(2000, 1, 1, tzinfo=UTC))
            )
        other: Reconciler = replica.state.reconciler
        report = await other.run_once()
        catalog.open_gate()
        placed = await placing

    assert report.confirmed >= 1
    assert (placed.status_code, placed.json()["status"]) == (201, "confirmed")
    events = await published_events(app.state.engine, nats_server.url, str(order_id))
    assert summary(events) == [("orders.order.confirmed", 1)]


def _committed(catalog: CatalogStub, product: uuid.UUID) -> list[uuid.UUID]:
    """The committed reservations of ``product`` (reservation id = order id)."""
    reservations = list(catalog.reservations.values())
    return [r.id for r in reservations if r.items[0][0] == product and r.status == "committed"]


async def test_no_event_carries_the_shipping_address(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    admin: Caller,
    nats_server: NatsServer,
) -> None:
    order_id = await _confirmed(client, catalog, customer)
    await _set_status(client, admin, order_id, "shipped")
    failed = order_body((catalog.add_product(stock=0), 1))
    await place(client, customer, failed)
    await published_events(app.state.engine, nats_server.url, order_id)

    # Every event of the session so far, from every test: none holds any part of an address.
    events = await stream_events(nats_server.url, "ORDERS", subject="orders.order.>")

    assert len(events) >= 3
    personal = [value for value in ADDRESS.values() if value]
    for event in events:
        body = event.envelope.model_dump_json()
        assert "shipping_address" not in event.envelope.data
        assert not [value for value in personal if value in body], event.envelope.type
