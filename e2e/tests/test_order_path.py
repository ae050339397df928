"""The order path with the real user-service, catalog and order service as uvicorn processes:
overselling under concurrency, a crash in the middle of the saga, and the catalog going away."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from common_libs.testing import wait_until

from tests.support.processes import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CATALOG_DEADLINE_SECONDS,
    Services,
    running_services,
)
from tests.support.shop import Account, Shop, bearer, order_body, unique

_PAUSED = re.compile(r"saga paused after reserve order_id=([0-9a-f-]{36})")


@pytest.fixture(scope="module")
def order_path() -> Iterator[Services]:
    with running_services() as path:
        yield path


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as module_client:
        yield module_client


@pytest.fixture(scope="module")
def shop(order_path: Services, client: httpx.Client) -> Shop:
    return order_path.shop(client)


@pytest.fixture(scope="module")
def admin(shop: Shop) -> Account:
    return shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)


async def _place_at_once(
    orders_url: str, customers: list[Account], product_id: str
) -> list[httpx.Response]:
    """One order of one item per customer, all sent at the same time."""
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{orders_url}/orders",
                    json=order_body((product_id, 1)),
                    headers={**bearer(c.access_token), "Idempotency-Key": unique("burst")},
                )
                for c in customers
            )
        )


def test_twenty_concurrent_orders_for_five_items_confirm_exactly_five(
    order_path: Services, shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=5)
    with ThreadPoolExecutor(4) as pool:
        customers = list(pool.map(lambda _: shop.new_customer(), range(20)))

    answers = asyncio.run(_place_at_once(order_path.orders.url, customers, product["id"]))

    statuses = sorted(response.status_code for response in answers)
    assert statuses == [201] * 5 + [409] * 15, [r.text for r in answers if r.status_code >= 500]
    confirmed = [r.json() for r in answers if r.status_code == 201]
    assert {order["status"] for order in confirmed} == {"confirmed"}
    assert len({order["user_id"] for order in confirmed}) == 5
    refused = [r.json() for r in answers if r.status_code == 409]
    assert {problem["product_id"] for problem in refused} == {product["id"]}
    assert shop.product(product["id"])["stock_available"] == 0
    stock = asyncio.run(order_path.catalog_stock(product["id"]))
    assert stock == {"stock": 0, "held": 0, "sold": 5}


def test_order_killed_after_its_reservation_is_settled_by_the_restarted_service(
    order_path: Services, shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=10)
    customer = shop.new_customer()
    orders = order_path.orders
    orders.stop()
    orders.start({"ORDERS_TEST_PAUSE_AFTER_RESERVE_SECONDS": "300"})
    log_before = len(orders.log())
    try:
        with ThreadPoolExecutor(1) as pool:
            placing = pool.submit(shop.place_order, customer, (product["id"], 2))
            wait_until(
                lambda: _PAUSED.search(orders.log()[log_before:]) is not None,
                timeout=30,
                message="the order service pauses after the reservation",
            )
            orders.kill()
            with pytest.raises(httpx.TransportError):
                placing.result(timeout=30)
    finally:
        orders.stop()
        orders.start()
    paused = _PAUSED.search(orders.log()[log_before:])
    assert paused is not None
    order_id = paused.group(1)

    wait_until(
        lambda: shop.order(customer, order_id)["status"] in ("confirmed", "failed"),
        timeout=60,
        message="the reconciler settles the order left pending",
    )

    status = shop.order(customer, order_id)["status"]
    reservation = asyncio.run(order_path.reservation_status(order_id))
    assert (status, reservation) in (("confirmed", "committed"), ("failed", "released"))
    available = shop.product(product["id"])["stock_available"]
    stock = asyncio.run(order_path.catalog_stock(product["id"]))
    assert available + stock["held"] + stock["sold"] == 10
    assert stock["held"] == 0


def test_catalog_down_answers_503_in_time_and_orders_resume_when_it_is_back(
    order_path: Services, shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=3)
    customer = shop.new_customer()
    key = unique("catalog-down")
    orders_pid = order_path.orders.pid
    order_path.catalog.stop()
    try:
        started = time.monotonic()
        refused = shop.place_order(customer, (product["id"], 1), key=key)
        elapsed = time.monotonic() - started
    finally:
        order_path.catalog.start()

    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    # Within the deadline, with room for a busy machine; a hang would take the client's 30 s.
    assert elapsed < CATALOG_DEADLINE_SECONDS + 3
    assert shop.product(product["id"])["stock_available"] == 3
    # The 503 dropped the key's claim: the retry it invites places the order.
    placed = shop.place_order(customer, (product["id"], 1), key=key)
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "confirmed"
    assert order_path.orders.pid == orders_pid
    assert shop.product(product["id"])["stock_available"] == 2
