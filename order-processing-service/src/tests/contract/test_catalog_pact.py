"""The contract with product-catalog-service: reserve stock in one step (hold and commit
together) and release it.

Every call ``CatalogClient`` makes, driven for real against Pact's mock server. The client
already holds its service token here (how it gets one is the user-service contract's part); the
catalog's verification sends a token it accepts in place of the example.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from common_libs.http_client import create_http_client
from common_libs.testing.pact import (
    Contract,
    bearer_token,
    currency,
    fresh_uuid,
    from_provider_state,
    money,
    uuid_like,
)
from pact import Pact, match

from app.clients.catalog_client import CatalogClient, InsufficientStock, UnknownProduct
from app.clients.resilience import Deadline

PRODUCT_ID = "4b1d5e2a-6c3f-4e8a-9b7d-0a1c2e3f4d5b"
RESERVATION_ID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
UNKNOWN_PRODUCT_ID = "7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"
UNKNOWN_RESERVATION_ID = "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f7a"
SERVICE_TOKEN = "service-token-from-user-service"
TTL_SECONDS = 600
QUANTITY = 2
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

AUTHORIZATION = bearer_token(f"Bearer {SERVICE_TOKEN}")
STATE_PRODUCT = from_provider_state(PRODUCT_ID, "${product_id}")
STATE_RESERVATION = from_provider_state(RESERVATION_ID, "${reservation_id}")


def _hold_body(*, reservation_id: Any, product_id: Any, quantity: int = QUANTITY) -> dict[str, Any]:
    return {
        "reservation_id": reservation_id,
        "items": [{"product_id": product_id, "quantity": quantity}],
        "ttl_seconds": TTL_SECONDS,
        "commit": True,
    }


def _reservation(status: str) -> dict[str, Any]:
    """A reservation answer: what the order saga reads (its status, the items and prices)."""
    return {
        "reservation_id": uuid_like(RESERVATION_ID),
        "status": status,
        "items": match.each_like(
            {
                "product_id": uuid_like(PRODUCT_ID),
                "name": match.str("Walnut desk"),
                "unit_price": money("249.00"),
                "currency": currency("USD"),
                "quantity": QUANTITY,
            }
        ),
    }


def _settle_path(action: str) -> Any:
    """The path of a commit or release of the reservation the provider state holds."""
    return from_provider_state(
        f"/inventory/reservations/{RESERVATION_ID}/{action}",
        f"/inventory/reservations/${{reservation_id}}/{action}",
        regex=rf"^/inventory/reservations/[0-9a-f-]{{36}}/{action}$",
    )


def stock_is_sold_in_one_step(pact: Pact) -> None:
    """A new reservation, held and committed in one call: 201, committed, priced by the catalog."""
    (
        pact.upon_receiving("a reservation committed in one step of a product in stock")
        .given("a product is in stock", stock=5)
        .with_request("POST", "/inventory/reservations")
        .with_header("Authorization", AUTHORIZATION)
        .with_body(
            _hold_body(reservation_id=fresh_uuid(RESERVATION_ID), product_id=STATE_PRODUCT),
            content_type=JSON,
        )
        .will_respond_with(201)
        .with_body(_reservation("committed"), content_type=JSON)
    )


def held_reservation_is_committed_in_one_step(pact: Pact) -> None:
    """The same call for a reservation held before (by a saga of the two-step form that stopped
    between its calls), or a retry: 200 with the reservation, committed."""
    (
        pact.upon_receiving("a reservation committed in one step that was held before")
        .given("a reservation is held", quantity=QUANTITY)
        .with_request("POST", "/inventory/reservations")
        .with_header("Authorization", AUTHORIZATION)
        .with_body(
            _hold_body(reservation_id=STATE_RESERVATION, product_id=STATE_PRODUCT),
            content_type=JSON,
        )
        .will_respond_with(200)
        .with_body(_reservation("committed"), content_type=JSON)
    )


def hold_beyond_stock_is_refused(pact: Pact) -> None:
    """More than the stock: 409 naming the product."""
    (
        pact.upon_receiving("a reservation of more than the stock")
        .given("a product is in stock", stock=QUANTITY - 1)
        .with_request("POST", "/inventory/reservations")
        .with_header("Authorization", AUTHORIZATION)
        .with_body(
            _hold_body(reservation_id=fresh_uuid(RESERVATION_ID), product_id=STATE_PRODUCT),
            content_type=JSON,
        )
        .will_respond_with(409)
        .with_body(
            {"detail": match.str("Not enough stock."), "product_id": uuid_like(PRODUCT_ID)},
            content_type=PROBLEM_JSON,
        )
    )


def hold_of_unknown_product_is_refused(pact: Pact) -> None:
    """A product the catalog does not know: 422 naming it."""
    (
        pact.upon_receiving("a reservation of an unknown product")
        .given("no product has the id", product_id=UNKNOWN_PRODUCT_ID)
        .with_request("POST", "/inventory/reservations")
        .with_header("Authorization", AUTHORIZATION)
        .with_body(
            _hold_body(reservation_id=fresh_uuid(RESERVATION_ID), product_id=UNKNOWN_PRODUCT_ID),
            content_type=JSON,
        )
        .will_respond_with(422)
        .with_body(
            {"detail": match.str("Unknown product."), "product_id": uuid_like(UNKNOWN_PRODUCT_ID)},
            content_type=PROBLEM_JSON,
        )
    )


def held_stock_is_released(pact: Pact) -> None:
    """Release a held reservation: 200 released."""
    (
        pact.upon_receiving("a release of a held reservation")
        .given("a reservation is held", quantity=QUANTITY)
        .with_request("POST", _settle_path("release"))
        .with_header("Authorization", AUTHORIZATION)
        .will_respond_with(200)
        .with_body(
            {"reservation_id": uuid_like(RESERVATION_ID), "status": "released"},
            content_type=JSON,
        )
    )


def release_of_unknown_reservation_is_not_found(pact: Pact) -> None:
    """Release a reservation the catalog never made: 404 (the client counts it as released)."""
    (
        pact.upon_receiving("a release of an unknown reservation")
        .given("no reservation has the id", reservation_id=UNKNOWN_RESERVATION_ID)
        .with_request("POST", f"/inventory/reservations/{UNKNOWN_RESERVATION_ID}/release")
        .with_header("Authorization", AUTHORIZATION)
        .will_respond_with(404)
    )


CONTRACT = Contract(
    "order-processing-service",
    "product-catalog-service",
    [
        stock_is_sold_in_one_step,
        held_reservation_is_committed_in_one_step,
        hold_beyond_stock_is_refused,
        hold_of_unknown_product_is_refused,
        held_stock_is_released,
        release_of_unknown_reservation_is_not_found,
    ],
)


class HeldServiceToken:
    """The service token the client already holds (``ServiceTokenProvider``'s interface)."""

    async def get(self, *, deadline: Deadline) -> str:
        """The token, at once."""
        return SERVICE_TOKEN

    def invalidate(self, token: str) -> None:
        """Nothing to forget: a refusal shows as a mismatch of the contract."""


@asynccontextmanager
async def catalog_client(url: str) -> AsyncIterator[CatalogClient]:
    """The real client, over the HTTP client the lifespan makes, pointed at ``url``."""
    http = create_http_client(base_url=url, timeout=2.0)
    try:
        yield CatalogClient(http=http, tokens=HeldServiceToken())
    finally:
        await http.aclose()


async def _reserve(client: CatalogClient, product_id: str) -> Any:
    return await client.reserve(
        reservation_id=uuid.UUID(RESERVATION_ID),
        items=[(uuid.UUID(product_id), QUANTITY)],
        ttl_seconds=TTL_SECONDS,
        deadline=Deadline.within(5),
    )


@pytest.mark.parametrize(
    "interaction", [stock_is_sold_in_one_step, held_reservation_is_committed_in_one_step]
)
async def test_reservation_in_one_step_is_committed_at_catalog_prices(
    interaction: Callable[[Pact], None],
) -> None:
    with CONTRACT.serve(interaction) as url:
        async with catalog_client(url) as client:
            reservation = await _reserve(client, PRODUCT_ID)

    assert (reservation.reservation_id, reservation.status) == (
        uuid.UUID(RESERVATION_ID),
        "committed",
    )
    [item] = reservation.items
    assert (item.product_id, item.quantity) == (uuid.UUID(PRODUCT_ID), QUANTITY)
    assert (item.name, item.unit_price, item.currency) == ("Walnut desk", Decimal("249.00"), "USD")


async def test_reservation_beyond_stock_is_refused_naming_the_product() -> None:
    with CONTRACT.serve(hold_beyond_stock_is_refused) as url:
        async with catalog_client(url) as client:
            with pytest.raises(InsufficientStock) as refused:
                await _reserve(client, PRODUCT_ID)

    assert refused.value.product_id == uuid.UUID(PRODUCT_ID)


async def test_reservation_of_an_unknown_product_is_refused_naming_it() -> None:
    with CONTRACT.serve(hold_of_unknown_product_is_refused) as url:
        async with catalog_client(url) as client:
            with pytest.raises(UnknownProduct) as refused:
                await _reserve(client, UNKNOWN_PRODUCT_ID)

    assert refused.value.product_id == uuid.UUID(UNKNOWN_PRODUCT_ID)


async def test_release_of_a_held_reservation_succeeds() -> None:
    with CONTRACT.serve(held_stock_is_released) as url:
        async with catalog_client(url) as client:
            await client.release(
                reservation_id=uuid.UUID(RESERVATION_ID), deadline=Deadline.within(5)
            )


async def test_release_of_an_unknown_reservation_counts_as_released() -> None:
    with CONTRACT.serve(release_of_unknown_reservation_is_not_found) as url:
        async with catalog_client(url) as client:
            await client.release(
                reservation_id=uuid.UUID(UNKNOWN_RESERVATION_ID), deadline=Deadline.within(5)
            )
