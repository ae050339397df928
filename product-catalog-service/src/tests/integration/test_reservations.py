"""Stock reservations: the internal contract order-processing-service relies on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from common_libs.testing import TestTokenIssuer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import Product
from tests.support.products import create_product, eventually, reservation_body

RESERVATIONS = "/inventory/reservations"


@pytest.fixture
async def shoe(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    """A product with stock 10, priced 89.90 USD."""
    return await create_product(client, admin_headers, name="Shoe", price="89.90", stock=10)


@pytest.fixture
async def sock(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    """A product with stock 5, priced 4.50 EUR."""
    return await create_product(
        client, admin_headers, name="Sock", price="4.5", currency="EUR", stock=5
    )


async def _available(client: httpx.AsyncClient, product: dict[str, Any]) -> int:
    available: int = (await client.get(f"/products/{product['id']}")).json()["stock_available"]
    return available


async def _stock_and_held(engine: AsyncEngine, product: dict[str, Any]) -> tuple[int, int]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(Product.stock, Product.held).where(Product.id == uuid.UUID(product["id"]))
            )
        ).one()
    return row.stock, row.held


async def _hold(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post(RESERVATIONS, json=body, headers=headers)


async def test_hold_answers_201_with_the_reservation_and_takes_stock(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    shoe: dict[str, Any],
    sock: dict[str, Any],
) -> None:
    body = reservation_body((sock["id"], 2), (shoe["id"], 3))

    response = await _hold(client, service_headers, body)

    assert response.status_code == 201
    reservation = response.json()
    assert reservation["reservation_id"] == body["reservation_id"]
    assert reservation["status"] == "held"
    assert reservation["items"] == [
        {
            "product_id": sock["id"],
            "name": "Sock",
            "unit_price": "4.50",
            "currency": "EUR",
            "quantity": 2,
        },
        {
            "product_id": shoe["id"],
            "name": "Shoe",
            "unit_price": "89.90",
            "currency": "USD",
            "quantity": 3,
        },
    ]
    assert await _available(client, shoe) == 7
    assert await _available(client, sock) == 3


async def test_default_ttl_is_600_seconds(
    client: httpx.AsyncClient, service_headers: dict[str, str], shoe: dict[str, Any]
) -> None:
    before = datetime.now(UTC)

    response = await _hold(client, service_headers, reservation_body((shoe["id"], 1)))

    expires_at = datetime.fromisoformat(response.json()["expires_at"])
    assert before + timedelta(seconds=590) < expires_at < before + timedelta(seconds=610)


async def test_ttl_seconds_sets_the_expiry(
    client: httpx.AsyncClient, service_headers: dict[str, str], shoe: dict[str, Any]
) -> None:
    before = datetime.now(UTC)

    response = await _hold(
        client, service_headers, reservation_body((shoe["id"], 1), ttl_seconds=60)
    )

    expires_at = datetime.fromisoformat(response.json()["expires_at"])
    assert before + timedelta(seconds=50) < expires_at < before + timedelta(seconds=70)


@pytest.mark.parametrize("ttl_seconds", [0, 3601])
async def test_ttl_outside_the_configured_bounds_answers_422(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    shoe: dict[str, Any],
    ttl_seconds: int,
) -> None:
    response = await _hold(
        client, service_headers, reservation_body((shoe["id"], 1), ttl_seconds=ttl_seconds)
    )

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:common:validation-failed"
    assert response.json()["errors"][0]["loc"][:2] == ["body", "ttl_seconds"]
    assert await _available(client, shoe) == 10


@pytest.mark.parametrize("commit", [False, True], ids=["hold", "one step"])
async def test_not_enough_stock_answers_409_naming_the_product_and_holds_nothing(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    sock: dict[str, Any],
    commit: bool,
) -> None:
    response = await _hold(
        client,
        service_headers,
        reservation_body((shoe["id"], 2), (sock["id"], 6), commit=commit),
    )

    assert response.status_code == 409
    problem = response.json()
    assert (problem["type"], problem["title"]) == (
        "urn:fleet:product-catalog:out-of-stock",
        "Out of Stock",
    )
    assert problem["product_id"] == sock["id"]
    assert sock["id"] in problem["detail"]
    assert problem["available"] == 5
    assert await _available(client, shoe) == 10
    assert await _available(client, sock) == 5
    assert await _stock_and_held(db_engine, shoe) == (10, 0)


async def test_unknown_product_answers_422_naming_it_and_holds_nothing(
    client: httpx.AsyncClient, service_headers: dict[str, str], shoe: dict[str, Any]
) -> None:
    unknown = str(uuid.uuid4())

    response = await _hold(client, service_headers, reservation_body((shoe["id"], 1), (unknown, 1)))

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:fleet:product-catalog:unknown-product"
    assert problem["product_id"] == unknown
    assert problem["errors"][0]["loc"] == ["body", "items", 1, "product_id"]
    assert await _available(client, shoe) == 10


async def test_deleted_product_counts_as_unknown(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    shoe: dict[str, Any],
) -> None:
    await client.delete(f"/products/{shoe['id']}", headers=admin_headers)

    response = await _hold(client, service_headers, reservation_body((shoe["id"], 1)))

    assert response.status_code == 422


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"product_id": "p", "quantity": 1}],
        [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 0}],
        [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 101}],
        [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": "1"}],
        [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 1}] * 2,
        [{"product_id": str(uuid.uuid4()), "quantity": 1} for _ in range(51)],
        [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 1, "price": "0"}],
    ],
    ids=["none", "bad-id", "zero", "too-many", "string", "duplicate", "51-items", "extra-field"],
)
async def test_invalid_items_answer_422(
    client: httpx.AsyncClient, service_headers: dict[str, str], items: list[Any]
) -> None:
    body = {"reservation_id": str(uuid.uuid4()), "items": items}

    response = await _hold(client, service_headers, body)

    assert response.status_code == 422


async def test_fifty_distinct_items_of_up_to_100_are_accepted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    products = [await create_product(client, admin_headers, stock=100) for _ in range(50)]

    response = await _hold(
        client, service_headers, reservation_body(*((p["id"], 100) for p in products))
    )

    assert response.status_code == 201
    assert len(response.json()["items"]) == 50


@pytest.mark.parametrize("role", ["customer", "admin"])
async def test_users_may_not_reserve_403(
    client: httpx.AsyncClient,
    issuer: TestTokenIssuer,
    shoe: dict[str, Any],
    role: str,
) -> None:
    response = await _hold(client, issuer.headers(role=role), reservation_body((shoe["id"], 1)))

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert await _available(client, shoe) == 10


@pytest.mark.parametrize("action", ["", "/commit", "/release"])
async def test_inventory_without_token_answers_401(client: httpx.AsyncClient, action: str) -> None:
    path = RESERVATIONS + (f"/{uuid.uuid4()}{action}" if action else "")

    response = await client.post(path, json=reservation_body((str(uuid.uuid4()), 1)))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"


@pytest.mark.parametrize("action", ["commit", "release"])
async def test_customer_may_not_settle_a_reservation_403(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    customer_headers: dict[str, str],
    shoe: dict[str, Any],
    action: str,
) -> None:
    body = reservation_body((shoe["id"], 1))
    await _hold(client, service_headers, body)

    response = await client.post(
        f"{RESERVATIONS}/{body['reservation_id']}/{action}", headers=customer_headers
    )

    assert response.status_code == 403


@pytest.mark.parametrize(("commit", "stock_and_held"), [(False, (10, 4)), (True, (6, 0))])
async def test_same_reservation_id_twice_holds_once_and_answers_200(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    commit: bool,
    stock_and_held: tuple[int, int],
) -> None:
    """A hold, or a one-step sale (``commit``), sent twice: held or sold once."""
    body = reservation_body((shoe["id"], 4), commit=commit)
    first = await _hold(client, service_headers, body)

    second = await _hold(client, service_headers, {**body, "ttl_seconds": 30})

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert await _available(client, shoe) == 6
    assert await _stock_and_held(db_engine, shoe) == stock_and_held


async def test_same_reservation_id_with_items_in_another_order_is_the_same_reservation(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    shoe: dict[str, Any],
    sock: dict[str, Any],
) -> None:
    body = reservation_body((shoe["id"], 1), (sock["id"], 2))
    await _hold(client, service_headers, body)

    again = await _hold(client, service_headers, {**body, "items": body["items"][::-1]})

    assert again.status_code == 200
    assert await _available(client, sock) == 3


async def test_same_reservation_id_with_other_items_answers_409(
    client: httpx.AsyncClient, service_headers: dict[str, str], shoe: dict[str, Any]
) -> None:
    body = reservation_body((shoe["id"], 1))
    await _hold(client, service_headers, body)

    response = await _hold(
        client,
        service_headers,
        reservation_body((shoe["id"], 2), reservation_id=body["reservation_id"]),
    )

    assert response.status_code == 409
    assert response.json()["type"] == "urn:fleet:product-catalog:reservation-mismatch"
    assert await _available(client, shoe) == 9


@pytest.mark.parametrize("way", ["commit", "one step"])
async def test_commit_turns_held_stock_into_sold_stock(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    way: str,
) -> None:
    """By its commit, or by the reservation sent again with ``commit`` (the one-step form)."""
    body = reservation_body((shoe["id"], 3))
    held = (await _hold(client, service_headers, body)).json()

    if way == "commit":
        response = await client.post(
            f"{RESERVATIONS}/{body['reservation_id']}/commit", headers=service_headers
        )
    else:
        response = await _hold(client, service_headers, {**body, "commit": True})

    assert response.status_code == 200
    assert response.json() == {**held, "status": "committed"}
    assert await _stock_and_held(db_engine, shoe) == (7, 0)
    assert await _available(client, shoe) == 7


async def test_release_returns_held_stock(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
) -> None:
    body = reservation_body((shoe["id"], 3))
    await _hold(client, service_headers, body)

    response = await client.post(
        f"{RESERVATIONS}/{body['reservation_id']}/release", headers=service_headers
    )

    assert response.status_code == 200
    assert response.json()["status"] == "released"
    assert await _stock_and_held(db_engine, shoe) == (10, 0)


@pytest.mark.parametrize(("action", "stock_and_held"), [("commit", (7, 0)), ("release", (10, 0))])
async def test_commit_or_release_twice_changes_nothing_the_second_time(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    action: str,
    stock_and_held: tuple[int, int],
) -> None:
    body = reservation_body((shoe["id"], 3))
    await _hold(client, service_headers, body)
    path = f"{RESERVATIONS}/{body['reservation_id']}/{action}"
    first = await client.post(path, headers=service_headers)

    second = await client.post(path, headers=service_headers)

    assert second.status_code == 200
    assert second.json() == first.json()
    assert await _stock_and_held(db_engine, shoe) == stock_and_held


@pytest.mark.parametrize("one_step", [False, True], ids=["hold then commit", "one step"])
async def test_release_of_a_committed_reservation_returns_its_stock(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    one_step: bool,
) -> None:
    """Sold in two steps or in one; the reservation sent again afterwards sells nothing."""
    body = reservation_body((shoe["id"], 3), commit=one_step)
    await _hold(client, service_headers, body)
    if not one_step:
        path = f"{RESERVATIONS}/{body['reservation_id']}/commit"
        await client.post(path, headers=service_headers)

    response = await client.post(
        f"{RESERVATIONS}/{body['reservation_id']}/release", headers=service_headers
    )
    again = await _hold(client, service_headers, {**body, "commit": True})

    assert response.json()["status"] == "released"
    assert (again.status_code, again.json()["status"]) == (200, "released")
    assert await _stock_and_held(db_engine, shoe) == (10, 0)


async def test_commit_of_a_released_reservation_answers_409(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
) -> None:
    body = reservation_body((shoe["id"], 3))
    await _hold(client, service_headers, body)
    await client.post(f"{RESERVATIONS}/{body['reservation_id']}/release", headers=service_headers)

    response = await client.post(
        f"{RESERVATIONS}/{body['reservation_id']}/commit", headers=service_headers
    )

    assert response.status_code == 409
    assert response.json()["type"] == "urn:fleet:product-catalog:reservation-not-held"
    assert response.json()["status"] == "released"
    assert await _stock_and_held(db_engine, shoe) == (10, 0)


@pytest.mark.parametrize("way", ["commit", "one step"])
async def test_commit_after_expiry_answers_409_even_before_the_sweeper_ran(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    way: str,
) -> None:
    """Committed by its commit, or by the one-step reservation sent again with ``commit``."""
    body = reservation_body((shoe["id"], 3), ttl_seconds=1)
    expires_at = datetime.fromisoformat(
        (await _hold(client, service_headers, body)).json()["expires_at"]
    )

    async def expired() -> bool:
        return datetime.now(UTC) > expires_at + timedelta(milliseconds=50)

    await eventually(expired, message="reservation expired")

    if way == "commit":
        response = await client.post(
            f"{RESERVATIONS}/{body['reservation_id']}/commit", headers=service_headers
        )
    else:
        response = await _hold(client, service_headers, {**body, "commit": True})

    assert response.status_code == 409
    assert response.json()["type"] == "urn:fleet:product-catalog:reservation-not-held"
    assert response.json()["status"] == "expired"
    assert await _stock_and_held(db_engine, shoe) == (10, 3)


@pytest.mark.parametrize("action", ["commit", "release"])
async def test_settling_an_unknown_reservation_answers_404(
    client: httpx.AsyncClient, service_headers: dict[str, str], action: str
) -> None:
    response = await client.post(f"{RESERVATIONS}/{uuid.uuid4()}/{action}", headers=service_headers)

    assert response.status_code == 404
    assert response.json()["type"] == "urn:fleet:product-catalog:reservation-not-found"


async def test_reservation_keeps_the_price_it_was_held_at(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    shoe: dict[str, Any],
) -> None:
    body = reservation_body((shoe["id"], 1))
    await _hold(client, service_headers, body)
    await client.patch(f"/products/{shoe['id']}", json={"price": "99.00"}, headers=admin_headers)

    response = await client.post(
        f"{RESERVATIONS}/{body['reservation_id']}/commit", headers=service_headers
    )

    assert response.json()["items"][0]["unit_price"] == "89.90"


# --- one step: hold and commit in one call (``commit: true``) ---------------------------------


async def test_one_step_sells_the_stock_and_answers_201_committed(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    db_engine: AsyncEngine,
    shoe: dict[str, Any],
    sock: dict[str, Any],
) -> None:
    body = reservation_body((sock["id"], 2), (shoe["id"], 3), commit=True)

    response = await _hold(client, service_headers, body)

    assert response.status_code == 201
    reservation = response.json()
    assert reservation["status"] == "committed"
    assert [
        (item["product_id"], item["unit_price"], item["quantity"]) for item in reservation["items"]
    ] == [
        (sock["id"], "4.50", 2),
        (shoe["id"], "89.90", 3),
    ]
    assert await _stock_and_held(db_engine, shoe) == (7, 0)
    assert await _stock_and_held(db_engine, sock) == (3, 0)
    assert await _available(client, shoe) == 7


async def test_commit_must_be_a_boolean(
    client: httpx.AsyncClient, service_headers: dict[str, str], shoe: dict[str, Any]
) -> None:
    response = await _hold(
        client, service_headers, reservation_body((shoe["id"], 1), commit="later")
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == ["body", "commit"]
    assert await _available(client, shoe) == 10
