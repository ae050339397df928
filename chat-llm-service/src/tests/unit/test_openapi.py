"""A 405 names in `Allow` every method the path serves (the conventions check the rest)."""

from __future__ import annotations

import uuid

import httpx


async def test_wrong_method_answers_405_listing_every_method_of_the_path(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.post(f"/chat/conversations/{uuid.uuid4()}")

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.headers["content-type"] == "application/problem+json"
