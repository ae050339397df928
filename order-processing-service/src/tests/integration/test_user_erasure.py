"""users.user.deleted, published for real on the USERS stream: the deleted user's shipping
addresses are erased by the running app's consumer; the orders, another user's data and a second
delivery are otherwise untouched. The consumer survives outages: the broker stopped and started
again as itself, and the database's connections terminated while a deletion is delivered (those
two tests run an app of their own on a database and a nats-server of their own)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from common_libs.events import DEADLETTER, USERS, EventConsumer, EventEnvelope
from common_libs.events.streams import ensure_stream
from common_libs.testing import NatsServer, PostgresServer, eventually, free_port, start_nats
from common_libs.testing.db_checks import create_migrated_database
from common_libs.testing.events import publish_user_deleted, stream_events
from common_libs.testing.outages import ConsumerCounts, deliver_during_outages
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.order_repository import ERASED, ERASED_ADDRESS
from app.db.tables import Base, IdempotencyKey, Order
from app.events import USER_ERASURE
from tests.integration.conftest import SERVICE_ROOT
from tests.support.apps import running_app
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


# -- Outages: an app and a nats-server of each test's own, on a database of the module's own -----


@pytest.fixture(scope="module")
def own_database_url(postgres_server: PostgresServer) -> str:
    """A migrated database of these tests alone: terminating its connections concerns no other
    app of the session."""
    return create_migrated_database(
        postgres_server, "order_service_erasure_outages", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


async def _erased(engine: AsyncEngine, user_id: str) -> bool:
    rows = await _stored(engine, user_id)
    return bool(rows) and all(row[0] == ERASED_ADDRESS and row[4] == ERASED_ADDRESS for row in rows)


async def _inbox(engine: AsyncEngine) -> set[uuid.UUID]:
    """The ids of the events the erasure consumer recorded as handled."""
    async with engine.connect() as connection:
        rows = await connection.scalars(
            select(_INBOX.c.event_id).where(_INBOX.c.consumer == USER_ERASURE)
        )
        return set(rows)


async def test_the_consumer_comes_back_with_the_broker_and_erases_each_deletion_once(
    own_database_url: str,
    service_settings: Callable[..., Settings],
    catalog: CatalogStub,
    make_caller: Callable[..., Caller],
    admin: Caller,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A broker of this test's own, stopped and started again as itself: same port, same store.
    port, store = free_port(), tmp_path / "nats"
    broker = ExitStack()
    with broker:
        url = broker.enter_context(start_nats(port=port, store_dir=store)).url
        settings = service_settings(database_url=own_database_url, nats_url=url)
        async with running_app(settings) as (application, client):
            engine: AsyncEngine = application.state.engine
            counts = ConsumerCounts(application.state.user_erasure, monkeypatch)
            first, second = make_caller("customer"), make_caller("customer")
            await _place(client, catalog, first)
            order_id = await _place(client, catalog, second)
            second_before = await _stored(engine, second.subject)
            inbox_before = await _inbox(engine)

            deleted_first = await publish_user_deleted(url, first.subject)
            await eventually(lambda: _erased(engine, first.subject), message="first user erased")
            first_erased = await _stored(engine, first.subject)

            broker.close()
            await eventually(
                lambda: not application.state.user_erasure.broker.connected,
                message="broker seen gone",
            )
            # Without the broker the app goes on answering, from its database.
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/ready")).status_code == 200
            read = await client.get(f"/orders/{order_id}", headers=admin.headers)
            assert read.status_code == 200
            assert read.json()["shipping_address"] == {**ADDRESS, "line2": None}

            assert broker.enter_context(start_nats(port=port, store_dir=store)).url == url
            deleted_second = await publish_user_deleted(url, second.subject)
            await eventually(
                lambda: _erased(engine, second.subject),
                within=30,
                message="second user erased after the broker came back",
            )
            second_after = await _stored(engine, second.subject)
            first_after = await _stored(engine, first.subject)
            inbox = await _inbox(engine) - inbox_before
            # The broker came back with its store: both deletions are in the stream.
            stored = [event.envelope.id for event in await stream_events(url, USERS.name)]

    assert stored == [deleted_first.id, deleted_second.id]
    # The second user's order is kept, its address replaced by the marker.
    assert [row[0] for row in second_after] == [ERASED_ADDRESS]
    assert [row[1:4] for row in second_after] == [row[1:4] for row in second_before]
    # Each deletion was handled exactly once: the first not again after the broker came back.
    assert first_after == first_erased
    assert inbox == {deleted_first.id, deleted_second.id}
    assert counts.consumed("handled") == 2


async def test_a_deletion_delivered_while_the_database_is_away_waits_and_is_applied(
    own_database_url: str,
    service_settings: Callable[..., Settings],
    catalog: CatalogStub,
    customer: Caller,
    admin: Caller,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with start_nats(port=free_port(), store_dir=tmp_path / "nats") as server:
        settings = service_settings(database_url=own_database_url, nats_url=server.url)
        async with running_app(settings) as (application, client):
            engine: AsyncEngine = application.state.engine
            consumer: EventConsumer = application.state.user_erasure
            # A message that fails for any reason but an outage would be dead-lettered at its
            # first delivery, and one that waits is delivered again at once (the app's backoff
            # starts at a second).
            monkeypatch.setattr(consumer, "max_deliveries", 1)
            monkeypatch.setattr(consumer, "backoff_seconds", (0.05,))
            counts = ConsumerCounts(consumer, monkeypatch)
            order_ids = [await _place(client, catalog, customer) for _ in range(2)]
            before = await _stored(engine, customer.subject)
            inbox_before = await _inbox(engine)

            # The customer's orders held: the erasure, when it comes, waits mid-way; three
            # times the database goes away while it waits.
            deleted = await deliver_during_outages(
                own_database_url,
                hold=select(Order.id).where(Order.user_id == customer.subject).with_for_update(),
                publish=lambda: publish_user_deleted(server.url, customer.subject),
                counts=counts,
            )

            # Applied, and the consumer's connection back in its pool: from now on the pool
            # hands out no connection the outages cut (the delivery that failed on the last cut
            # had the pool replace every older one). Polled through the pool before that, a read
            # could get one of them while the consumer held the live one (it failed under load).
            await eventually(lambda: counts.consumed("handled") == 1, message="deletion applied")
            assert await _erased(engine, customer.subject)
            after = await _stored(engine, customer.subject)
            read = await client.get(f"/orders/{order_ids[0]}", headers=admin.headers)
            assert read.status_code == 200
            assert read.json()["shipping_address"] == ERASED_ADDRESS
            assert (await client.get("/ready")).status_code == 200
            dead_letters = await stream_events(server.url, DEADLETTER.name)
            inbox = await _inbox(engine) - inbox_before

    assert [row[1:4] for row in after] == [row[1:4] for row in before]
    assert inbox == {deleted.id}
    # Each outage failed a delivery; none counted towards dead-lettering it.
    assert counts.consumed("failed") >= 3
    assert counts.consumed("handled") == 1
    assert counts.dead_lettered() == 0
    assert dead_letters == []
