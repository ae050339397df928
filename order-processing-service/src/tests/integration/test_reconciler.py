"""The reconciler settles orders a crash left ``pending``, retries releases, purges keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from common_libs.testing import eventually
from fastapi import FastAPI
from sqlalchemy import func, update

from app.config import Settings
from app.db import idempotency_repository
from app.db.session import unit_of_work
from app.db.tables import IdempotencyKey, Order
from app.models.order_models import OrderCreate
from app.services.idempotency import request_hash
from app.services.reconciler import Reconciler
from tests.support.apps import running_app
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place


async def crashed_order(
    app: FastAPI,
    caller: Caller,
    items: list[tuple[uuid.UUID, int]],
    *,
    key: str = "crashed",
    age: timedelta = timedelta(hours=1),
) -> uuid.UUID:
    """The state a crash leaves right after the claim commit: a stale ``pending`` order whose key
    is in flight (what a placement writes first, then aged past the reconciler's max age)."""
    body = order_body(*items)
    order_id = uuid.uuid4()
    async with unit_of_work(app.state.engine) as connection:
        await idempotency_repository.place_pending_order(
            connection,
            order_id=order_id,
            user_id=caller.subject,
            key=key,
            request_hash=request_hash(request=OrderCreate.model_validate(body)),
            ttl=timedelta(hours=24),
            shipping_address=body["shipping_address"],
            items=items,
        )
        await connection.execute(
            update(Order).where(Order.id == order_id).values(created_at=func.now() - age)
        )
    return order_id


async def _status(client: httpx.AsyncClient, caller: Caller, order_id: uuid.UUID) -> str:
    response = await client.get(f"/orders/{order_id}", headers=caller.headers)
    status: str = response.json()["status"]
    return status


async def test_order_pending_with_a_held_reservation_is_confirmed_and_committed(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    product = catalog.add_product(price="2.50", stock=10)
    order_id = await crashed_order(app, customer, [(product, 4)])
    catalog.hold(order_id, [(product, 4)])

    report = await reconciler.run_once()

    assert report.confirmed >= 1
    order = (await client.get(f"/orders/{order_id}", headers=customer.headers)).json()
    assert (order["status"], order["total"]) == ("confirmed", "10.00")
    assert catalog.status(order_id) == "committed"
    assert catalog.on_hand(product) == 6


async def test_a_held_reservation_the_catalog_cannot_commit_now_leaves_the_order_to_the_next_pass(
    app: FastAPI, catalog: CatalogStub, customer: Caller, reconciler: Reconciler
) -> None:
    product = catalog.add_product(stock=5)
    order_id = await crashed_order(app, customer, [(product, 2)])
    catalog.hold(order_id, [(product, 2)])
    catalog.fail("reserve", "error")

    report = await reconciler.run_once()

    assert report.left_pending == 1
    assert catalog.status(order_id) == "held"
    catalog.heal()
    assert (await reconciler.run_once()).confirmed == 1
    assert catalog.status(order_id) == "committed"
    assert catalog.on_hand(product) == 3


async def test_order_whose_reservation_never_arrived_is_reserved_and_confirmed(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    product = catalog.add_product(stock=10)
    order_id = await crashed_order(app, customer, [(product, 1)])

    await reconciler.run_once()

    assert await _status(client, customer, order_id) == "confirmed"
    assert catalog.on_hand(product) == 9


async def test_retry_with_the_key_of_a_settled_order_gets_the_final_order(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    product = catalog.add_product(stock=10)
    order_id = await crashed_order(app, customer, [(product, 1)], key="retry-me")
    body = order_body((product, 1))
    before = await place(client, customer, body, key="retry-me")

    await reconciler.run_once()
    after = await place(client, customer, body, key="retry-me")

    assert before.status_code == 409
    assert after.status_code == 201
    assert after.json()["id"] == str(order_id)
    assert catalog.on_hand(product) == 9


async def test_order_the_catalog_now_refuses_is_failed_and_its_refusal_replayed(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    sold_out = catalog.add_product(stock=0)
    order_id = await crashed_order(app, customer, [(sold_out, 1)], key="refused-later")

    await reconciler.run_once()
    replay = await place(client, customer, order_body((sold_out, 1)), key="refused-later")

    assert await _status(client, customer, order_id) == "failed"
    assert replay.status_code == 409
    assert replay.json()["product_id"] == str(sold_out)


async def test_order_whose_reservation_expired_is_failed_and_its_key_freed(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    product = catalog.add_product(stock=10)
    order_id = await crashed_order(app, customer, [(product, 2)], key="expired")
    catalog.hold(order_id, [(product, 2)])
    catalog.expire(order_id)

    await reconciler.run_once()
    retried = await place(client, customer, order_body((product, 2)), key="expired")

    assert await _status(client, customer, order_id) == "failed"
    assert retried.status_code == 201
    assert retried.json()["id"] != str(order_id)
    assert catalog.on_hand(product) == 8


async def test_order_stays_pending_while_the_catalog_is_down_then_settles(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    product = catalog.add_product(stock=10)
    order_id = await crashed_order(app, customer, [(product, 1)])
    catalog.fail("reserve", "error")

    during = await reconciler.run_once()
    status_during = await _status(client, customer, order_id)
    catalog.heal()
    await reconciler.run_once()

    assert during.left_pending >= 1
    assert status_during == "pending"
    assert await _status(client, customer, order_id) == "confirmed"


async def test_fresh_pending_order_is_left_to_its_request(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    product = catalog.add_product(stock=10)
    order_id = await crashed_order(app, customer, [(product, 1)], age=timedelta(0))

    await reconciler.run_once()

    assert await _status(client, customer, order_id) == "pending"
    assert catalog.count("reserve", order_id) == 0


async def test_two_replicas_settle_every_pending_order_exactly_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
    service_settings: Callable[..., Settings],
) -> None:
    product = catalog.add_product(stock=100)
    orders = [
        await crashed_order(app, customer, [(product, 1)], key=f"replica-{n}") for n in range(8)
    ]

    async def statuses() -> list[str]:
        return [await _status(client, customer, order_id) for order_id in orders]

    # The replica's own loop makes a first pass at start-up too: three reconcilers at once.
    async with running_app(service_settings()) as (replica, _):
        other: Reconciler = replica.state.reconciler
        await asyncio.gather(reconciler.run_once(), other.run_once())
        # The two passes skip what the start-up pass has locked: let it finish before the
        # replica stops (stopping would cancel it and leave its orders to a later pass).
        await eventually(
            lambda: _all_confirmed(statuses()), within=15, message="every order settled"
        )

    assert await statuses() == ["confirmed"] * 8
    assert {catalog.count("reserve", order_id) for order_id in orders} == {1}
    assert {catalog.status(order_id) for order_id in orders} == {"committed"}
    assert catalog.on_hand(product) == 92


async def _all_confirmed(statuses: Awaitable[list[str]]) -> bool:
    return all(status == "confirmed" for status in await statuses)


async def test_expired_keys_are_purged_and_the_key_can_be_used_again(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
) -> None:
    first = await place(client, customer, order_body((catalog.add_product(), 1)), key="old-key")
    async with unit_of_work(app.state.engine) as connection:
        await connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == customer.subject)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )

    report = await reconciler.run_once()
    reused = await place(client, customer, order_body((catalog.add_product(), 2)), key="old-key")

    assert report.purged_keys >= 1
    assert reused.status_code == 201
    assert reused.json()["id"] != first.json()["id"]


async def test_expired_key_not_yet_purged_is_taken_over_by_a_new_request(
    app: FastAPI, client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    first = await place(client, customer, order_body((catalog.add_product(), 1)), key="stale-key")
    async with unit_of_work(app.state.engine) as connection:
        await connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == customer.subject)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )

    reused = await place(client, customer, order_body((catalog.add_product(), 2)), key="stale-key")

    assert reused.status_code == 201
    assert reused.json()["id"] != first.json()["id"]
