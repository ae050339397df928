"""The published OpenAPI schema tells the truth about errors and access."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI


@pytest.fixture
def schema(offline_app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document."""
    return offline_app.openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def test_operations_that_need_a_token_document_401_and_403(schema: dict[str, Any]) -> None:
    protected = [(m, p, op) for m, p, op in _operations(schema) if op.get("security")]

    assert {(m, p) for m, p, _ in protected} == {
        ("POST", "/products"),
        ("PATCH", "/products/{product_id}"),
        ("DELETE", "/products/{product_id}"),
        ("POST", "/inventory/reservations"),
        ("POST", "/inventory/reservations/{reservation_id}/commit"),
        ("POST", "/inventory/reservations/{reservation_id}/release"),
    }
    for _, _, operation in protected:
        assert {"401", "403", "503"} <= set(operation["responses"])
        responses = operation["responses"]
        assert responses["401"]["x-problem-types"] == [
            "urn:fleet:common:authentication-required",
            "urn:fleet:common:invalid-token",
            "urn:fleet:common:token-expired",
        ]
        assert responses["403"]["x-problem-types"] == ["urn:fleet:common:insufficient-scope"]


@pytest.mark.parametrize(
    ("method", "path", "status", "types"),
    [
        ("PATCH", "/products/{product_id}", "409", ["duplicate-sku", "stock-below-held"]),
        ("DELETE", "/products/{product_id}", "409", ["product-has-held-stock"]),
        (
            "POST",
            "/inventory/reservations",
            "409",
            ["out-of-stock", "reservation-mismatch", "reservation-not-held"],
        ),
        (
            "POST",
            "/inventory/reservations/{reservation_id}/commit",
            "409",
            ["reservation-not-held"],
        ),
        ("GET", "/products/{product_id}", "404", ["product-not-found"]),
        (
            "POST",
            "/inventory/reservations/{reservation_id}/release",
            "404",
            ["reservation-not-found"],
        ),
    ],
)
def test_each_domain_refusal_is_listed_where_it_is_answered(
    schema: dict[str, Any], method: str, path: str, status: str, types: list[str]
) -> None:
    listed = schema["paths"][path][method.lower()]["responses"][status]["x-problem-types"]

    assert listed == [f"urn:fleet:product-catalog:{name}" for name in types]


def test_a_reservation_lists_its_unknown_product_beside_validation(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/inventory/reservations"]["post"]["responses"]

    assert responses["422"]["x-problem-types"] == [
        "urn:fleet:common:validation-failed",
        "urn:fleet:product-catalog:unknown-product",
    ]


async def test_method_not_allowed_lists_every_method_of_the_path(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.put("/products")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


async def test_method_not_allowed_on_a_path_with_a_parameter_lists_its_methods(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.put(f"/products/{uuid.uuid4()}")

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
