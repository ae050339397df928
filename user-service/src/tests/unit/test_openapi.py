"""The OpenAPI schema tells the truth about errors, and the 405 answer names every method."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI


def test_every_documented_error_is_problem_json(offline_app: FastAPI) -> None:
    schema = offline_app.openapi()

    errors = [
        answer
        for path_item in schema["paths"].values()
        for operation in path_item.values()
        for code, answer in operation["responses"].items()
        if int(code) >= 400
    ]

    assert errors
    assert all(list(answer["content"]) == ["application/problem+json"] for answer in errors)


def test_no_schema_exposes_a_password_hash(offline_app: FastAPI) -> None:
    assert "password_hash" not in json.dumps(offline_app.openapi())


async def test_wrong_method_answers_405_listing_every_method_of_the_path(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.put("/users/me")

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert response.headers["content-type"] == "application/problem+json"
