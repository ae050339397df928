"""GET /orders and GET /orders/{id}: the caller's own orders, pages, the status filter."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from common_libs.testing import TestTokenIssuer

from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place


async def _confirmed_order(client: httpx.AsyncClient, catalog: CatalogStub, caller: Caller) -> str:
    response = await place(client, caller, order_body((catalog.add_product(), 1)))
    assert response.status_code == 201
    order_id: str = response.json()["id"]
    return order_id


async def test_owner_reads_their_order(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    order_id = await _confirmed_order(client, catalog, customer)

    response = await client.get(f"/orders/{order_id}", headers=customer.headers)

    assert response.status_code == 200
    assert response.json()["id"] == order_id
    assert response.json()["status"] == "confirmed"


async def test_unknown_order_answers_404(client: httpx.AsyncClient, customer: Caller) -> None:
    response = await client.get(f"/orders/{uuid.uuid4()}", headers=customer.headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:orders:order-not-found"


async def test_order_id_that_is_not_a_uuid_answers_422(
    client: httpx.AsyncClient, customer: Caller
) -> None:
    response = await client.get("/orders/not-a-uuid", headers=customer.headers)

    assert response.status_code == 422


async def test_reading_without_a_token_answers_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"


async def test_an_expired_token_answers_401_saying_it_expired(
    client: httpx.AsyncClient, issuer: TestTokenIssuer
) -> None:
    now = int(time.time())
    expired = issuer.headers(subject=str(uuid.uuid4()), iat=now - 600, exp=now - 60)

    response = await client.get("/orders", headers=expired)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert response.json()["type"] == "urn:fleet:common:token-expired"
    assert response.json()["title"] == "Token Expired"


async def test_a_token_signed_by_another_key_answers_401_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    forged = TestTokenIssuer().headers(subject=str(uuid.uuid4()))

    response = await client.get("/orders", headers=forged)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", error_description="'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"


async def test_list_pages_through_the_callers_orders_newest_first(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    placed = [await _confirmed_order(client, catalog, customer) for _ in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/orders", params=params, headers=customer.headers)).json()
        seen += [order["id"] for order in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(placed))
    assert pages == 3


async def test_list_filters_by_status(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    confirmed = await _confirmed_order(client, catalog, customer)
    await place(client, customer, order_body((catalog.add_product(stock=0), 1)))

    failed = await client.get("/orders", params={"status": "failed"}, headers=customer.headers)
    ok = await client.get("/orders", params={"status": "confirmed"}, headers=customer.headers)

    assert [order["status"] for order in failed.json()["items"]] == ["failed"]
    assert [order["id"] for order in ok.json()["items"]] == [confirmed]


async def test_list_with_an_unknown_status_answers_422(
    client: httpx.AsyncClient, customer: Caller
) -> None:
    response = await client.get("/orders", params={"status": "lost"}, headers=customer.headers)

    assert response.status_code == 422


async def test_list_with_a_forged_cursor_answers_422(
    client: httpx.AsyncClient, customer: Caller
) -> None:
    forged = "eyJjIjoibm90LWEtZGF0ZSIsImkiOiJ4In0"  # {"c":"not-a-date","i":"x"}

    response = await client.get("/orders", params={"cursor": forged}, headers=customer.headers)

    assert response.status_code == 422


async def test_admin_lists_and_reads_other_users_orders(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller, admin: Caller
) -> None:
    order_id = await _confirmed_order(client, catalog, customer)

    listed = await client.get("/orders", params={"limit": 100}, headers=admin.headers)
    read = await client.get(f"/orders/{order_id}", headers=admin.headers)

    assert order_id in [order["id"] for order in listed.json()["items"]]
    assert read.status_code == 200
    assert read.json()["user_id"] == customer.subject


@pytest.mark.parametrize("status", [None, "confirmed"])
@pytest.mark.parametrize("reader", ["customer", "admin"])
async def test_every_page_holds_whole_orders_for_the_owner_or_an_admin_with_or_without_a_status(
    client: httpx.AsyncClient,
    catalog: CatalogStub,
    customer: Caller,
    admin: Caller,
    reader: str,
    status: str | None,
) -> None:
    # Orders of three, one and two lines, the second cancelled: a page of one order holds all
    # of its lines (the limit counts orders, not lines), in the order they were placed.
    placed: list[tuple[str, str, list[str]]] = []
    for lines in (3, 1, 2):
        products = [catalog.add_product() for _ in range(lines)]
        response = await place(client, customer, order_body(*((p, 1) for p in products)))
        order = response.json()
        if lines == 1:
            cancel = f"/orders/{order['id']}/cancel"
            order = (await client.post(cancel, headers=customer.headers)).json()
        placed.append((order["id"], order["status"], [str(p) for p in products]))
    expected = [(i, lines) for i, state, lines in reversed(placed) if status in (None, state)]
    headers = (admin if reader == "admin" else customer).headers

    # Pages of one order, each after the last one's cursor: the first statement without a
    # keyset, the next ones with it. An admin sees these first (the newest orders of all).
    seen: list[tuple[str, list[str]]] = []
    cursor: str | None = None
    for _ in expected:
        params: dict[str, str | int] = {"limit": 1}
        if status is not None:
            params["status"] = status
        if cursor is not None:
            params["cursor"] = cursor
        page = await client.get("/orders", params=params, headers=headers)
        assert page.status_code == 200
        [order] = page.json()["items"]
        seen.append((order["id"], [item["product_id"] for item in order["items"]]))
        cursor = page.json()["next_cursor"]

    assert [state for _, state, _ in placed] == ["confirmed", "cancelled", "confirmed"]
    assert seen == expected
