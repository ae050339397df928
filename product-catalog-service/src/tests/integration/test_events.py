"""Events: every change of a product reaches the CATALOG stream once, with the documented
envelope, and a change that rolls back publishes nothing (API.md, "Events").

The session's app relays its outbox to the session's nats-server; each test reads back the
events about its own products (the stream is shared by the session) within a bounded wait.

The relay coalesces a product's updates: of those in one pass only the latest is published
(``app.events.COALESCED``). A test that checks each update's own event waits for it before the
next change, so that no pass holds two (one that was published has left the outbox).
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from common_libs.testing import NatsServer
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.events import StreamEvent
from fastapi import FastAPI
from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import Reservation
from app.services.reservation_sweeper import sweep_expired_reservations
from tests.support.events import created_events, wait_for_events
from tests.support.products import create_product, product_payload, reservation_body, unique

RESERVATIONS = "/inventory/reservations"


def _request_id() -> dict[str, str]:
    return {"X-Request-ID": unique("req")}


def _summary(events: list[StreamEvent]) -> list[tuple[str, int]]:
    return [(event.envelope.type, event.envelope.version) for event in events]


async def _get(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    response = await client.get(f"/products/{product_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _assert_envelope(event: StreamEvent, *, type_: str, subject: str, request_id: str) -> None:
    envelope = event.envelope
    assert envelope.type == type_
    assert event.subject == type_
    assert envelope.source == "product-catalog-service"
    assert envelope.subject == subject
    assert envelope.request_id == request_id
    assert event.headers["Nats-Msg-Id"] == str(envelope.id)
    assert event.headers["X-Request-ID"] == request_id


async def test_create_update_delete_publish_their_events_with_the_documented_envelope(
    client: httpx.AsyncClient, admin_headers: dict[str, str], nats_server: NatsServer
) -> None:
    create_id, update_id, delete_id = _request_id(), _request_id(), _request_id()
    created = await client.post(
        "/products", json=product_payload(), headers={**admin_headers, **create_id}
    )
    assert created.status_code == 201
    product_id = created.json()["id"]
    after_create = await _get(client, product_id)
    updated = await client.patch(
        f"/products/{product_id}", json={"price": "12.30"}, headers={**admin_headers, **update_id}
    )
    assert updated.status_code == 200
    after_update = await _get(client, product_id)
    await wait_for_events(nats_server.url, [product_id], 2)
    deleted = await client.delete(f"/products/{product_id}", headers={**admin_headers, **delete_id})
    assert deleted.status_code == 204

    events = await wait_for_events(nats_server.url, [product_id], 3)

    assert _summary(events) == [
        ("catalog.product.created", 1),
        ("catalog.product.updated", 2),
        ("catalog.product.deleted", 3),
    ]
    expected = [
        ("catalog.product.created", create_id, after_create),
        ("catalog.product.updated", update_id, after_update),
        ("catalog.product.deleted", delete_id, {"id": product_id}),
    ]
    for event, (type_, request_id, data) in zip(events, expected, strict=True):
        _assert_envelope(
            event, type_=type_, subject=product_id, request_id=request_id["X-Request-ID"]
        )
        assert event.envelope.data == data
    assert after_update["price"] == "12.30"
    assert len({event.envelope.id for event in events}) == 3


async def test_an_empty_patch_changes_nothing_and_publishes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], nats_server: NatsServer
) -> None:
    product = await create_product(client, admin_headers)
    empty = await client.patch(f"/products/{product['id']}", json={}, headers=admin_headers)
    assert empty.status_code == 200
    # The next change is version 2: the empty one neither published nor took a version.
    await client.patch(f"/products/{product['id']}", json={"stock": 3}, headers=admin_headers)

    events = await wait_for_events(nats_server.url, [product["id"]], 2)

    assert _summary(events) == [("catalog.product.created", 1), ("catalog.product.updated", 2)]
    assert events[1].envelope.data == await _get(client, product["id"])


async def test_a_create_rejected_by_the_sku_constraint_publishes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], nats_server: NatsServer
) -> None:
    first = await create_product(client, admin_headers)
    rejected = await client.post(
        "/products", json=product_payload(sku=first["sku"]), headers=admin_headers
    )
    assert rejected.status_code == 409
    # A later change of the first product reaching the stream shows the relay got past them.
    await client.patch(f"/products/{first['id']}", json={"name": "Renamed"}, headers=admin_headers)

    events = await wait_for_events(nats_server.url, [first["id"]], 2)
    created_with_sku = [
        event
        for event in await created_events(nats_server.url)
        if event.envelope.data["sku"] == first["sku"]
    ]

    assert _summary(events) == [("catalog.product.created", 1), ("catalog.product.updated", 2)]
    assert [event.envelope.subject for event in created_with_sku] == [first["id"]]


async def test_an_update_refused_inside_its_transaction_publishes_nothing(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    nats_server: NatsServer,
) -> None:
    product = await create_product(client, admin_headers, stock=5)
    held = await client.post(
        RESERVATIONS, json=reservation_body((product["id"], 4)), headers=service_headers
    )
    assert held.status_code == 201
    await wait_for_events(nats_server.url, [product["id"]], 2)
    # Stock below what is held: the UPDATE's own condition refuses it, the transaction rolls back.
    refused = await client.patch(
        f"/products/{product['id']}", json={"stock": 3, "name": "Never"}, headers=admin_headers
    )
    assert refused.status_code == 409
    await client.patch(f"/products/{product['id']}", json={"stock": 9}, headers=admin_headers)

    events = await wait_for_events(nats_server.url, [product["id"]], 3)

    assert _summary(events) == [
        ("catalog.product.created", 1),
        ("catalog.product.updated", 2),
        ("catalog.product.updated", 3),
    ]
    assert [event.envelope.data["stock_available"] for event in events] == [5, 1, 5]
    assert all(event.envelope.data["name"] != "Never" for event in events)


REJECTED_NAME = "Rejected at commit"


@pytest.fixture
async def outbox_refusing_marked_products(db_engine: AsyncEngine) -> AsyncIterator[None]:
    """A deferred constraint trigger that fails the COMMIT of a transaction whose outbox holds
    an event about a product named ``REJECTED_NAME``: the event row is written, then rolled back
    with the change."""
    statements = [
        """
        CREATE FUNCTION test_refuse_marked_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused at commit by the test'; END $$
        """,
        f"""
        CREATE CONSTRAINT TRIGGER test_refuse_marked_event AFTER INSERT ON outbox
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (NEW.data ->> 'name' = '{REJECTED_NAME}')
        EXECUTE FUNCTION test_refuse_marked_event()
        """,
    ]
    async with db_engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with db_engine.begin() as connection:
            await connection.execute(text("DROP TRIGGER test_refuse_marked_event ON outbox"))
            await connection.execute(text("DROP FUNCTION test_refuse_marked_event()"))


@pytest.mark.usefixtures("outbox_refusing_marked_products")
async def test_a_change_whose_commit_fails_publishes_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], nats_server: NatsServer
) -> None:
    category = unique("rollback")
    async with asgi_client(app, raise_app_exceptions=False) as failing_client:
        failed = await failing_client.post(
            "/products",
            json=product_payload(name=REJECTED_NAME, category=category),
            headers=admin_headers,
        )
    assert failed.status_code == 500
    later = await create_product(client, admin_headers, category=category)
    await wait_for_events(nats_server.url, [later["id"]], 1)

    listed = await client.get("/products", params={"category": category})
    in_category = [
        event
        for event in await created_events(nats_server.url)
        if event.envelope.data["category"] == category
    ]

    assert [product["id"] for product in listed.json()["items"]] == [later["id"]]
    assert [event.envelope.subject for event in in_category] == [later["id"]]


async def test_hold_and_release_publish_the_new_available_stock(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    nats_server: NatsServer,
) -> None:
    shoe = await create_product(client, admin_headers, stock=10)
    sock = await create_product(client, admin_headers, stock=5)
    hold_id, release_id = _request_id(), _request_id()
    body = reservation_body((shoe["id"], 3), (sock["id"], 2))
    held = await client.post(RESERVATIONS, json=body, headers={**service_headers, **hold_id})
    assert held.status_code == 201
    after_hold = {product["id"]: await _get(client, product["id"]) for product in (shoe, sock)}
    await wait_for_events(nats_server.url, [shoe["id"], sock["id"]], 4)
    released = await client.post(
        f"{RESERVATIONS}/{body['reservation_id']}/release",
        headers={**service_headers, **release_id},
    )
    assert released.status_code == 200

    events = await wait_for_events(nats_server.url, [shoe["id"], sock["id"]], 6)

    for product, start in ((shoe, 10), (sock, 5)):
        mine = [event for event in events if event.envelope.subject == product["id"]]
        assert _summary(mine) == [
            ("catalog.product.created", 1),
            ("catalog.product.updated", 2),
            ("catalog.product.updated", 3),
        ]
        _assert_envelope(
            mine[1],
            type_="catalog.product.updated",
            subject=product["id"],
            request_id=hold_id["X-Request-ID"],
        )
        assert mine[1].envelope.data == after_hold[product["id"]]
        assert mine[2].envelope.request_id == release_id["X-Request-ID"]
        assert mine[2].envelope.data == await _get(client, product["id"])
        assert [event.envelope.data["stock_available"] for event in mine] == [
            start,
            after_hold[product["id"]]["stock_available"],
            start,
        ]
    assert after_hold[shoe["id"]]["stock_available"] == 7
    assert after_hold[sock["id"]]["stock_available"] == 3


@pytest.mark.parametrize("one_step", [False, True], ids=["hold then commit", "one step"])
async def test_commit_and_replays_publish_nothing_and_releasing_a_commit_publishes_stock(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    nats_server: NatsServer,
    one_step: bool,
) -> None:
    """Sold in two steps (hold, commit) or in one (``commit: true``): one event either way."""
    product = await create_product(client, admin_headers, stock=10)
    body = reservation_body((product["id"], 4), commit=one_step)
    settle = f"{RESERVATIONS}/{body['reservation_id']}"
    assert (await client.post(RESERVATIONS, json=body, headers=service_headers)).status_code == 201
    await wait_for_events(nats_server.url, [product["id"]], 2)
    # A replay of the reservation; a commit (stock_available stays 6) and a replay of the commit.
    assert (await client.post(RESERVATIONS, json=body, headers=service_headers)).status_code == 200
    if not one_step:
        assert (await client.post(f"{settle}/commit", headers=service_headers)).status_code == 200
        assert (await client.post(f"{settle}/commit", headers=service_headers)).status_code == 200
    assert (await _get(client, product["id"]))["stock_available"] == 6
    # Releasing the committed reservation puts the stock back (and its replay changes nothing).
    assert (await client.post(f"{settle}/release", headers=service_headers)).status_code == 200
    assert (await client.post(f"{settle}/release", headers=service_headers)).status_code == 200
    await wait_for_events(nats_server.url, [product["id"]], 3)
    await client.patch(f"/products/{product['id']}", json={"name": "Last"}, headers=admin_headers)

    events = await wait_for_events(nats_server.url, [product["id"]], 4)

    assert _summary(events) == [
        ("catalog.product.created", 1),
        ("catalog.product.updated", 2),
        ("catalog.product.updated", 3),
        ("catalog.product.updated", 4),
    ]
    assert [event.envelope.data["stock_available"] for event in events] == [10, 6, 10, 10]
    assert events[3].envelope.data["name"] == "Last"


async def test_the_sweeper_publishes_one_event_per_product_it_releases_stock_of(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    nats_server: NatsServer,
) -> None:
    product = await create_product(client, admin_headers, stock=5)
    bodies = [reservation_body((product["id"], 1)) for _ in range(2)]
    for published, body in enumerate(bodies, start=2):
        assert (await client.post(RESERVATIONS, json=body, headers=service_headers)).is_success
        await wait_for_events(nats_server.url, [product["id"]], published)
    async with db_engine.begin() as connection:
        await connection.execute(
            update(Reservation)
            .where(Reservation.id.in_([uuid.UUID(body["reservation_id"]) for body in bodies]))
            .values(expires_at=func.now() - timedelta(seconds=1))
        )

    # In a context of its own, as the lifespan's sweeper task runs: no request around it (in
    # process, the requests above left their request id in this test's context).
    sweep = sweep_expired_reservations(engine=db_engine, batch_size=1000)
    assert await asyncio.create_task(sweep, context=contextvars.Context()) >= 2
    events = await wait_for_events(nats_server.url, [product["id"]], 4)

    assert _summary(events)[-1] == ("catalog.product.updated", 4)
    assert [event.envelope.data["stock_available"] for event in events] == [5, 4, 3, 5]
    assert events[-1].envelope.request_id is None
    assert events[-1].envelope.data == await _get(client, product["id"])


def test_the_relay_coalesces_a_products_updates_and_nothing_else(app: FastAPI) -> None:
    assert app.state.relay.coalesce == {"catalog.product.updated"}
