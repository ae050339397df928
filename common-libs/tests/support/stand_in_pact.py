"""A shop's pact, written by the pact kit, for the stand-ins' tests: reservations (ids the
consumer makes, ids from provider states), a form grant, pages and a text answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pact import Pact, match

from common_libs.testing.pact import Contract, fresh_uuid, from_provider_state, money, uuid_like

PRODUCT_ID = "4b1d5e2a-6c3f-4e8a-9b7d-0a1c2e3f4d5b"
UNKNOWN_PRODUCT_ID = "7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"
RESERVATION_ID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
UNKNOWN_RESERVATION_ID = "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f7a"
LISTED_ID = "5c7e9a1b-3d5f-4b7d-9f1b-3d5f7b9d1f3b"
FORM = "application/x-www-form-urlencoded"


def reservation(product_id: Any, *, reservation_id: Any = None) -> dict[str, Any]:
    return {
        "reservation_id": reservation_id or fresh_uuid(RESERVATION_ID),
        "items": [{"product_id": product_id, "quantity": 2}],
    }


def in_stock(pact: Pact) -> None:
    (
        pact.upon_receiving("a reservation of a product in stock")
        .given("a product is in stock")
        .with_request("POST", "/reservations")
        .with_body(
            reservation(from_provider_state(PRODUCT_ID, "${product_id}")),
            content_type="application/json",
        )
        .will_respond_with(201)
        .with_body(
            {
                "reservation_id": uuid_like(RESERVATION_ID),
                "items": match.each_like(
                    {"product_id": uuid_like(PRODUCT_ID), "quantity": 2, "price": money("9.50")}
                ),
                "status": "held",
            },
            content_type="application/json",
        )
    )


def unknown_product(pact: Pact) -> None:
    (
        pact.upon_receiving("a reservation of an unknown product")
        .given("no product has the id")
        .with_request("POST", "/reservations")
        .with_body(reservation(UNKNOWN_PRODUCT_ID), content_type="application/json")
        .will_respond_with(422)
        .with_body(
            {"detail": "Unknown product.", "product_id": UNKNOWN_PRODUCT_ID},
            content_type="application/problem+json",
        )
    )


def several_products(pact: Pact) -> None:
    """Items "like" the example: any number of them."""
    (
        pact.upon_receiving("a reservation of several products")
        .given("products are in stock")
        .with_request("POST", "/reservations/batch")
        .with_body(
            {"items": match.each_like({"product_id": uuid_like(PRODUCT_ID), "quantity": 1})},
            content_type="application/json",
        )
        .will_respond_with(201)
        .with_body({"status": "held"}, content_type="application/json")
    )


def commit(pact: Pact) -> None:
    (
        pact.upon_receiving("a commit of a held reservation")
        .given("a reservation is held")
        .with_request(
            "POST",
            from_provider_state(
                f"/reservations/{RESERVATION_ID}/commit",
                "/reservations/${reservation_id}/commit",
                regex=r"^/reservations/[0-9a-f-]{36}/commit$",
            ),
        )
        .will_respond_with(200)
        .with_body(
            {"reservation_id": uuid_like(RESERVATION_ID), "status": "committed"},
            content_type="application/json",
        )
    )


def release_unknown(pact: Pact) -> None:
    (
        pact.upon_receiving("a release of an unknown reservation")
        .given("no reservation has the id")
        .with_request("POST", f"/reservations/{UNKNOWN_RESERVATION_ID}/release")
        .will_respond_with(404)
    )


def release(pact: Pact) -> None:
    (
        pact.upon_receiving("a release of a held reservation")
        .given("a reservation is held")
        .with_request(
            "POST",
            from_provider_state(
                f"/reservations/{RESERVATION_ID}/release",
                "/reservations/${reservation_id}/release",
                regex=r"^/reservations/[0-9a-f-]{36}/release$",
            ),
        )
        .will_respond_with(200)
        .with_body({"status": "released"}, content_type="application/json")
    )


def _grant(pact: Pact, secret: str, status: int) -> Any:
    form = f"grant_type=client_credentials&client_id=shop&client_secret={secret}"
    return (
        pact.upon_receiving(f"a client-credentials grant answered {status}")
        .given("a service client is registered")
        .with_request("POST", "/auth/token")
        .with_body(form, content_type=FORM)
        .will_respond_with(status)
    )


def right_secret(pact: Pact) -> None:
    _grant(pact, "the-secret", 200).with_body(
        {"scope": "shop", "expires_in": 900},
        content_type="application/json",
    )


def wrong_secret(pact: Pact) -> None:
    _grant(pact, "not-the-secret", 401).with_header("Content-Type", "application/problem+json")


def first_page(pact: Pact) -> None:
    (
        pact.upon_receiving("a page of the product list")
        .given("two products are listed")
        .with_request("GET", "/products")
        .with_query_parameter("limit", "1")
        .with_query_parameter("category", match.regex("shoes", regex=r"^[a-z]+$"))
        .will_respond_with(200)
        .with_body(
            {"items": [{"id": uuid_like(LISTED_ID), "name": "Red shoes"}], "next_cursor": "next"},
            content_type="application/json",
        )
    )


def last_page(pact: Pact) -> None:
    (
        pact.upon_receiving("the last page of the product list")
        .given("two products are listed")
        .with_request("GET", "/products")
        .with_query_parameters({"limit": "1", "category": "shoes", "cursor": "next"})
        .will_respond_with(200)
        .with_body({"items": [], "next_cursor": None}, content_type="application/json")
    )


def health(pact: Pact) -> None:
    (
        pact.upon_receiving("a health check")
        .with_request("GET", "/health")
        .will_respond_with(200)
        .with_body("ok", content_type="text/plain")
    )


RESERVATIONS = [in_stock, unknown_product, several_products, commit, release_unknown, release]
CREDENTIALS = [wrong_secret, right_secret]
PAGES = [first_page, last_page]
ALL = [*RESERVATIONS, *CREDENTIALS, *PAGES, health]


def write_pact(directory: Path, interactions: list[Any] = ALL) -> Path:
    """The pact (of ``interactions``) as the consumer tests publish it, the pact kit's writer."""
    return Contract("shop-consumer", "shop-provider", interactions).write(directory)
