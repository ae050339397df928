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
