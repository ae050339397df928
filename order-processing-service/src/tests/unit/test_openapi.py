"""A 405 names in `Allow` every method the path serves (the conventions check the rest)."""

from __future__ import annotations

import httpx


async def test_wrong_method_answers_405_listing_every_method_of_the_path(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.delete("/orders")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"
