"""The OpenAPI document shows no password hash, and a 405 names every method of the path."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI


def test_no_schema_exposes_a_password_hash(offline_app: FastAPI) -> None:
    assert "password_hash" not in json.dumps(offline_app.openapi())


async def test_wrong_method_answers_405_listing_every_method_of_the_path(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.put("/users/me")

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_method_on_a_collection_lists_the_methods_of_its_routes(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.delete("/users")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
