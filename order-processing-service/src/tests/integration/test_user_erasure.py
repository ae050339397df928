"""users.user.deleted, published for real on the USERS stream: the deleted user's shipping
addresses are erased by the running app's consumer; the orders, another user's data and a second
delivery are otherwise untouched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
from common_libs.events import USERS, EventEnvelope
from common_libs.events.streams import ensure_stream
from common_libs.testing import NatsServer, eventually
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.order_repository import ERASED, ERASED_ADDRESS
from app.db.tables import Base, IdempotencyKey, Order
from app.events import USER_ERASURE
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import ADDRESS, Caller, order_body, place

_INBOX = Base.metadata.tables["inbox"]


def _user_deleted(user_id: str, *, version: int = 2) -> EventEnvelope[dict[str, Any]]:
    return EventEnvelope[dict[str, Any]](
        id=uuid.uuid4(),
        type="users.user.deleted",
        source="user-service",
        subject=user_id,
        version=version,
        occurred_at=datetime.now(UTC),
        data={"id": user_id},
    )


async def _publish(nats_url: str, event: EventEnvelope[dict[str, Any]]) -> bool:
    """Publish ``event`` on USERS as user-service would; whether the broker took it as new."""
    connection = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False)
    try:
        js = connection.jetstream()
        await ensure_stream(js, USERS)
        ack = await js.publish(
            event.type,
            event.model_dump_json().encode(),
            stream=USERS.name,
            headers={"Nats-Msg-Id": str(event.id)},
        )
    finally:
        await connection.close()
    return not ack.duplicate


async def _place(client: httpx.AsyncClient, catalog: CatalogStub, caller: Caller) -> str:
    response = await place(client, caller, order_body((catalog.add_product(), 2)))
    assert response.status_code == 201
    order_id: str = response.json()["id"]
    return order_id


async def _stored(engine: AsyncEngine, user_id: str) -> list[tuple[Any, ...]]:
    """Each order of ``user_id``: its address, status, total, update time and stored answer's
    address."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                Order.shipping_address,
                Order.status,
                Order.total,
                Order.updated_at,
                IdempotencyKey.response_body["shipping_address"],
            )
            .join(IdempotencyKey, IdempotencyKey.order_id == Order.id)
            .where(Order.user_id == user_id)
            .order_by(Order.id)
        )
    return [tuple(row) for row in rows]


async def _handled(engine: AsyncEngine, event_id: uuid.UUID) -> bool:
    async with engine.connect() as connection:
        found = await connection.scalar(
            select(_INBOX.c.event_id).where(
                _INBOX.c.consumer == USER_ERASURE, _INBOX.c.event_id == event_id
            )
        )
    return found is not None


async def _erase(app: FastAPI, nats_url: str, user_id: str) -> EventEnvelope[dict[str, Any]]:
    event = _user_deleted(user_id)
    assert await _publish(nats_url, event)
    await eventually(lambda: _handled(app.state.engine, event.id), message=f"user {user_id} erased")
    return event


async def test_deleted_users_addresses_are_erased_and_their_orders_kept(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    nats_server: NatsServer,
    make_caller: Any,
) -> None:
    deleted, other = make_caller("customer"), make_caller("customer")
    for caller in (deleted, deleted, other):
        await _place(client, catalog, caller)
    before = await _stored(app.state.engine, deleted.subject)
    others_before = await _stored(app.state.engine, other.subject)

    await _erase(app, nats_server.url, deleted.subject)

    after = await _stored(app.state.engine, deleted.subject)
    assert [row[0] for row in after] == [ERASED_ADDRESS, ERASED_ADDRESS]
    assert [row[4] for row in after] == [ERASED_ADDRESS, ERASED_ADDRESS]
    assert [row[1:4] for row in after] == [row[1:4] for row in before]
    assert await _stored(app.state.engine, other.subject) == others_before
    assert others_before[0][0] == {**ADDRESS, "line2": None}


async def test_the_same_event_again_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    nats_server: NatsServer,
    customer: Caller,
) -> None:
    await _place(client, catalog, customer)
    event = await _erase(app, nats_server.url, customer.subject)
    erased = await _stored(app.state.engine, customer.subject)

    # The same message: the broker drops it (Nats-Msg-Id).
    assert not await _publish(nats_server.url, event)
    # The same deletion under a new id and version: the handler itself runs a second time.
    again = _user_deleted(customer.subject, version=3)
    assert await _publish(nats_server.url, again)
    await eventually(lambda: _handled(app.state.engine, again.id), message="second delivery")

    assert await _stored(app.state.engine, customer.subject) == erased


async def test_admin_reading_an_erased_order_sees_the_marker(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    nats_server: NatsServer,
    customer: Caller,
    admin: Caller,
) -> None:
    order_id = await _place(client, catalog, customer)
    placed = (await client.get(f"/orders/{order_id}", headers=admin.headers)).json()

    await _erase(app, nats_server.url, customer.subject)
    response = await client.get(f"/orders/{order_id}", headers=admin.headers)

    assert response.status_code == 200
    order = response.json()
    assert order["shipping_address"] == ERASED_ADDRESS
    assert order["shipping_address"]["name"] == ERASED
    assert {**order, "shipping_address": None} == {**placed, "shipping_address": None}
