"""A 405 names in `Allow` every method the path serves; what `POST /orders` documents about
its Idempotency-Key and its problems (the conventions check the rest)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI


async def test_wrong_method_answers_405_listing_every_method_of_the_path(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.delete("/orders")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


def test_place_order_documents_idempotency_key_as_a_required_header(offline_app: FastAPI) -> None:
    operation = offline_app.openapi()["paths"]["/orders"]["post"]

    [parameter] = operation["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "Idempotency-Key",
        "header",
        True,
    )
    assert parameter["schema"]["minLength"] == 1
    assert parameter["schema"]["maxLength"] == 255
    # Missing, it is the idempotency problem (400), never FastAPI's 422 for a missing header.
    assert operation["responses"]["400"]["x-problem-types"] == [
        "urn:fleet:common:idempotency-key-missing",
        "urn:fleet:common:malformed-request",
    ]


def test_place_order_lists_which_409s_and_422s_it_answers(offline_app: FastAPI) -> None:
    responses = offline_app.openapi()["paths"]["/orders"]["post"]["responses"]

    assert responses["409"]["x-problem-types"] == [
        "urn:fleet:common:idempotency-key-in-flight",
        "urn:fleet:orders:out-of-stock",
    ]
    assert responses["422"]["x-problem-types"] == [
        "urn:fleet:common:idempotency-key-reused",
        "urn:fleet:common:validation-failed",
        "urn:fleet:orders:mixed-currencies",
        "urn:fleet:orders:unknown-product",
    ]
    assert responses["429"]["x-problem-types"] == ["urn:fleet:common:rate-limited"]
