"""POST /orders: prices from the catalog, the saga's happy path, and every refusal."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from common_libs.testing import eventually

from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place


async def test_order_is_confirmed_with_catalog_prices_and_decimal_totals(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    pen = catalog.add_product(price="0.10", stock=10)
    ink = catalog.add_product(price="19.99", stock=5)

    response = await place(client, customer, order_body((pen, 3), (ink, 2)))

    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "confirmed"
    assert order["user_id"] == customer.subject
    assert order["currency"] == "USD"
    assert order["total"] == "40.28"
    assert [(i["unit_price"], i["quantity"], i["line_total"]) for i in order["items"]] == [
        ("0.10", 3, "0.30"),
        ("19.99", 2, "39.98"),
    ]
    assert order["items"][0]["name"] == catalog.products[pen].name
    assert order["shipping_address"]["city"] == "London"


async def test_confirmed_order_commits_its_reservation_under_the_order_id(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=10)

    order = (await place(client, customer, order_body((product, 4)))).json()

    assert catalog.status(uuid.UUID(order["id"])) == "committed"
    assert catalog.on_hand(product) == 6
    assert catalog.available(product) == 6


async def test_order_takes_one_call_to_the_catalog(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    """The one-step reservation: held and committed by the same call."""
    product = catalog.add_product(stock=10)

    order_id = uuid.UUID((await place(client, customer, order_body((product, 1)))).json()["id"])

    assert catalog.count("reserve", order_id) == 1
    assert catalog.status(order_id) == "committed"


async def test_client_sent_prices_are_refused(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    body = order_body((catalog.add_product(), 1))
    body["items"][0]["unit_price"] = "0.01"

    response = await place(client, customer, body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "items", 0, "unit_price"]


async def test_missing_idempotency_key_answers_400(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    body = order_body((catalog.add_product(), 1))

    response = await client.post("/orders", json=body, headers=customer.headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:common:idempotency-key-missing"
    assert response.json()["title"] == "Idempotency Key Missing"
    assert "Idempotency-Key" in response.json()["detail"]


async def test_idempotency_key_longer_than_255_characters_is_refused(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    body = order_body((catalog.add_product(), 1))

    response = await place(client, customer, body, key="k" * 256)

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:common:validation-failed"
    assert [error["loc"] for error in response.json()["errors"]] == [["header", "Idempotency-Key"]]


async def test_order_without_items_is_refused(client: httpx.AsyncClient, customer: Caller) -> None:
    response = await place(client, customer, order_body())

    assert response.status_code == 422


async def test_order_with_51_items_is_refused(client: httpx.AsyncClient, customer: Caller) -> None:
    items = [(uuid.uuid4(), 1) for _ in range(51)]

    response = await place(client, customer, order_body(*items))

    assert response.status_code == 422


async def test_order_with_50_items_is_accepted(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    items = [(catalog.add_product(price="1.00"), 1) for _ in range(50)]

    response = await place(client, customer, order_body(*items))

    assert response.status_code == 201
    assert response.json()["total"] == "50.00"


async def test_repeated_product_is_refused(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product()

    response = await place(client, customer, order_body((product, 1), (product, 2)))

    assert response.status_code == 422
    assert "only once" in response.json()["errors"][0]["msg"]


async def test_quantities_outside_1_to_100_are_refused(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=500)

    statuses = [
        (await place(client, customer, order_body((product, quantity)))).status_code
        for quantity in (0, 101, -1)
    ]

    assert statuses == [422, 422, 422]
    assert catalog.available(product) == 500


async def test_not_enough_stock_answers_409_naming_the_product_and_fails_the_order(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    plenty = catalog.add_product(stock=10)
    scarce = catalog.add_product(stock=1)

    response = await place(client, customer, order_body((plenty, 1), (scarce, 2)))

    assert response.status_code == 409
    problem = response.json()
    assert (problem["type"], problem["title"]) == ("urn:fleet:orders:out-of-stock", "Out of Stock")
    assert problem["product_id"] == str(scarce)
    assert str(scarce) in problem["detail"]
    listed = (await client.get("/orders", headers=customer.headers)).json()["items"]
    assert [order["status"] for order in listed] == ["failed"]
    assert (catalog.available(plenty), catalog.available(scarce)) == (10, 1)


async def test_unknown_product_answers_422_naming_it(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    missing = uuid.uuid4()

    response = await place(client, customer, order_body((catalog.add_product(), 1), (missing, 1)))

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:orders:unknown-product"
    assert response.json()["product_id"] == str(missing)
    assert str(missing) in response.json()["detail"]


async def test_products_in_two_currencies_are_refused_and_their_stock_released(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    dollars = catalog.add_product(currency="USD", stock=3)
    euros = catalog.add_product(currency="EUR", stock=3)

    response = await place(client, customer, order_body((dollars, 1), (euros, 1)))

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:orders:mixed-currencies"
    assert "currencies" in response.json()["detail"]
    listed = (await client.get("/orders", headers=customer.headers)).json()["items"]
    order_id = uuid.UUID(listed[0]["id"])
    assert listed[0]["status"] == "failed"
    await eventually(lambda: catalog.status(order_id) == "released")
    assert (catalog.available(dollars), catalog.available(euros)) == (3, 3)


async def test_admin_may_place_an_order(
    client: httpx.AsyncClient, catalog: CatalogStub, admin: Caller
) -> None:
    response = await place(client, admin, order_body((catalog.add_product(), 1)))

    assert response.status_code == 201


async def test_service_token_may_not_place_an_order(
    client: httpx.AsyncClient, catalog: CatalogStub, make_caller: Callable[..., Caller]
) -> None:
    service = make_caller("service")

    response = await place(client, service, order_body((catalog.add_product(), 1)))

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')


async def test_order_without_token_answers_401(
    client: httpx.AsyncClient, catalog: CatalogStub
) -> None:
    body = order_body((catalog.add_product(), 1))

    response = await client.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"
