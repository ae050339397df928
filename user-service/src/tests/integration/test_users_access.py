"""/users/{id} (self or admin) and /users (admin, cursor-paginated)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from common_libs.pagination import encode_cursor

from tests.support.users import admin_headers, bearer, new_customer, register, service_token


async def test_customer_reads_itself_by_id(client: httpx.AsyncClient) -> None:
    user, tokens = await new_customer(client)

    response = await client.get(f"/users/{user['id']}", headers=bearer(tokens))

    assert response.status_code == 200
    assert response.json() == user


async def test_customer_reading_another_user_answers_404_like_a_missing_one(
    client: httpx.AsyncClient,
) -> None:
    other = await register(client)
    _, tokens = await new_customer(client)

    existing = await client.get(f"/users/{other['id']}", headers=bearer(tokens))
    missing = await client.get(f"/users/{uuid.uuid4()}", headers=bearer(tokens))

    assert existing.status_code == missing.status_code == 404
    assert existing.json()["detail"] == missing.json()["detail"]
    assert existing.json()["type"] == missing.json()["type"] == "urn:fleet:users:user-not-found"


async def test_admin_reads_any_user(client: httpx.AsyncClient) -> None:
    other = await register(client)

    response = await client.get(f"/users/{other['id']}", headers=await admin_headers(client))

    assert response.status_code == 200
    assert response.json() == other


async def test_admin_reading_a_missing_user_answers_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/users/{uuid.uuid4()}", headers=await admin_headers(client))

    assert response.status_code == 404


async def test_user_id_that_is_no_uuid_answers_422(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)

    response = await client.get("/users/not-a-uuid", headers=bearer(tokens))

    assert response.status_code == 422


async def test_customer_listing_users_answers_403_insufficient_scope(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await new_customer(client)

    response = await client.get("/users", headers=bearer(tokens))

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.json()["title"] == "Insufficient Scope"
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", '
        'error_description="Your role may not perform this operation."'
    )


async def test_service_listing_users_answers_403_insufficient_scope(
    client: httpx.AsyncClient,
) -> None:
    token = await service_token(client)

    response = await client.get("/users", headers=bearer(token))

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')


async def test_listing_users_without_token_answers_401_with_the_bare_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/users")

    assert response.status_code == 401
    assert response.json()["type"] == "urn:fleet:common:authentication-required"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_walks_every_user_once_newest_first(client: httpx.AsyncClient) -> None:
    created = [await register(client) for _ in range(5)]
    headers = await admin_headers(client)

    seen: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/users", params=params, headers=headers)).json()
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids))
    assert [user["id"] for user in reversed(created)] == ids[:5]
    keys = [(item["created_at"], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}, {"cursor": "eyJhIjoxfQ"}],
)
async def test_bad_page_parameters_answer_422(
    client: httpx.AsyncClient, params: dict[str, object]
) -> None:
    response = await client.get("/users", params=params, headers=await admin_headers(client))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "position",
    [
        {"created_at": "0001-01-01T00:00:00+14:00", "id": "00000000-0000-0000-0000-000000000000"},
        {"created_at": "2026-11-26T10:00:00", "id": "00000000-0000-0000-0000-000000000000"},
        {"created_at": "2026-11-26T10:00:00+00:00", "id": 12},
    ],
)
async def test_cursor_with_impossible_position_answers_422(
    client: httpx.AsyncClient, position: dict[str, object]
) -> None:
    params = {"cursor": encode_cursor(position)}

    response = await client.get("/users", params=params, headers=await admin_headers(client))

    assert response.status_code == 422
