"""The catalog refusing, failing, hanging, answering late or absent: 503 in time, nothing held."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
from common_libs.testing import eventually, free_port

from app.config import Settings
from app.services.reconciler import Reconciler
from app.services.settlement import OrderSettlement
from tests.integration.conftest import DEADLINE_SECONDS
from tests.support.apps import running_app
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place
from tests.support.users_stub import UsersStub

# Generous: the point is "about the deadline", not a benchmark (the machine is shared).
ANSWER_WITHIN = DEADLINE_SECONDS + 2.0


async def _only_order(client: httpx.AsyncClient, caller: Caller) -> dict[str, object]:
    items = (await client.get("/orders", headers=caller.headers)).json()["items"]
    assert len(items) == 1
    order: dict[str, object] = items[0]
    return order


def _assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "urn:fleet:common:service-unavailable"


async def test_catalog_erroring_answers_503_after_retrying_and_fails_the_order(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=5)
    catalog.fail("reserve", "error")

    response = await place(client, customer, order_body((product, 1)))

    _assert_retry_later(response)
    order = await _only_order(client, customer)
    assert order["status"] == "failed"
    assert catalog.count("reserve", uuid.UUID(str(order["id"]))) >= 2
    assert catalog.available(product) == 5


async def test_catalog_hanging_answers_503_within_the_deadline(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=5)
    catalog.fail("reserve", "hang", seconds=10 * DEADLINE_SECONDS)

    started = time.monotonic()
    response = await place(client, customer, order_body((product, 1)))
    elapsed = time.monotonic() - started

    _assert_retry_later(response)
    assert elapsed < ANSWER_WITHIN
    assert (await _only_order(client, customer))["status"] == "failed"
    assert catalog.available(product) == 5


async def test_catalog_answering_after_the_deadline_gets_its_reservation_released(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=5)
    catalog.fail("reserve", "late", seconds=3 * DEADLINE_SECONDS)

    started = time.monotonic()
    response = await place(client, customer, order_body((product, 2)))
    elapsed = time.monotonic() - started

    _assert_retry_later(response)
    assert elapsed < ANSWER_WITHIN
    order_id = uuid.UUID(str((await _only_order(client, customer))["id"]))
    await eventually(lambda: catalog.status(order_id) == "released", message="released")
    assert catalog.available(product) == 5


async def test_release_that_cannot_reach_the_catalog_is_retried_by_the_reconciler(
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    reconciler: Reconciler,
    settlement: OrderSettlement,
) -> None:
    product = catalog.add_product(stock=5)
    # The stock is sold, the answer comes after the deadline: the order fails and its stock
    # must go back.
    catalog.fail("reserve", "late", seconds=3 * DEADLINE_SECONDS)
    catalog.fail("release", "error")
    await place(client, customer, order_body((product, 2)))
    order_id = uuid.UUID(str((await _only_order(client, customer))["id"]))
    # The request's own release retries until its deadline: healing the catalog before it has
    # given up would let it, not the reconciler, release the stock.
    await settlement.releases.wait()
    assert catalog.count("release", order_id) >= 1
    assert catalog.available(product) == 3

    catalog.heal()
    report = await reconciler.run_once()

    assert report.released >= 1
    assert catalog.status(order_id) == "released"
    assert catalog.available(product) == 5


async def test_token_endpoint_down_answers_503(
    service_settings: Callable[..., Settings],
    catalog: CatalogStub,
    users_stub: UsersStub,
    customer: Caller,
) -> None:
    users_stub.failing = True
    # A fresh instance: no service token cached yet.
    async with running_app(service_settings()) as (_, client):
        response = await place(client, customer, order_body((catalog.add_product(), 1)))

        _assert_retry_later(response)
        assert (await _only_order(client, customer))["status"] == "failed"


async def test_catalog_unreachable_answers_503_and_fails_the_order(
    service_settings: Callable[..., Settings], customer: Caller
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with running_app(service_settings(catalog_url=nowhere)) as (_, client):
        started = time.monotonic()
        response = await place(client, customer, order_body((uuid.uuid4(), 1)))
        elapsed = time.monotonic() - started

        _assert_retry_later(response)
        assert elapsed < ANSWER_WITHIN
        assert (await _only_order(client, customer))["status"] == "failed"
