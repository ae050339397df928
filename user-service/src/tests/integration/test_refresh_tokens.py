"""POST /auth/refresh and /auth/logout: rotation, reuse detection, revocation, purging."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.session import unit_of_work
from app.db.tables import RefreshToken
from app.services import auth_manager
from tests.support.users import bearer, login, new_customer, register


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_answers_a_new_pair(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]
    assert (await client.get("/users/me", headers=bearer(body))).status_code == 200


async def test_refresh_token_is_stored_only_as_its_hash(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    user, tokens = await new_customer(client)

    stored = await connection.scalar(
        select(RefreshToken.token_hash).where(RefreshToken.user_id == uuid.UUID(user["id"]))
    )

    assert stored == hashlib.sha256(tokens["refresh_token"].encode()).digest()


async def test_reusing_a_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    _, first = await new_customer(client)
    second = (await _refresh(client, first["refresh_token"])).json()
    newest = (await _refresh(client, second["refresh_token"])).json()

    replay = await _refresh(client, first["refresh_token"])
    newest_after_replay = await _refresh(client, newest["refresh_token"])

    assert replay.status_code == 401
    assert newest_after_replay.status_code == 401


async def test_reuse_answers_like_an_unknown_token(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)
    await _refresh(client, tokens["refresh_token"])

    replay = await _refresh(client, tokens["refresh_token"])
    unknown = await _refresh(client, "never-issued-token")

    assert replay.status_code == unknown.status_code == 401
    assert replay.json()["detail"] == unknown.json()["detail"]
    assert (
        replay.json()["type"] == unknown.json()["type"] == ("urn:fleet:users:invalid-refresh-token")
    )


async def test_reuse_leaves_other_logins_of_the_user_working(client: httpx.AsyncClient) -> None:
    user, first_login = await new_customer(client)
    other_login = await login(client, user["email"])
    await _refresh(client, first_login["refresh_token"])

    await _refresh(client, first_login["refresh_token"])

    assert (await _refresh(client, other_login["refresh_token"])).status_code == 200


async def test_expired_refresh_token_answers_401(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    user = await register(client)
    token = "expired-" + uuid.uuid4().hex
    past = datetime.now(UTC) - timedelta(days=1)
    await connection.execute(
        insert(RefreshToken).values(
            id=uuid.uuid4(),
            token_hash=hashlib.sha256(token.encode()).digest(),
            family_id=uuid.uuid4(),
            user_id=uuid.UUID(user["id"]),
            created_at=past - timedelta(days=30),
            expires_at=past,
        )
    )

    response = await _refresh(client, token)

    assert response.status_code == 401


async def test_refresh_body_with_unknown_field_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/refresh", json={"refresh_token": "x", "user_id": "y"})

    assert response.status_code == 422


async def test_concurrent_uses_of_one_refresh_token_let_exactly_one_through(
    committing_client: httpx.AsyncClient,
) -> None:
    _, tokens = await new_customer(committing_client)

    responses = await asyncio.gather(
        *(_refresh(committing_client, tokens["refresh_token"]) for _ in range(4))
    )

    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]


async def test_logout_answers_204_and_the_refresh_token_stops_working(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await new_customer(client)

    response = await client.post(
        "/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens)
    )

    assert response.status_code == 204
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 401


async def test_logout_twice_answers_204_both_times(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)
    body = {"refresh_token": tokens["refresh_token"]}

    first = await client.post("/auth/logout", json=body, headers=bearer(tokens))
    second = await client.post("/auth/logout", json=body, headers=bearer(tokens))

    assert (first.status_code, second.status_code) == (204, 204)


async def test_logout_without_access_token_answers_401(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)

    response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"


async def test_logout_with_another_users_refresh_token_answers_404_and_revokes_nothing(
    client: httpx.AsyncClient,
) -> None:
    _, victim = await new_customer(client)
    _, attacker = await new_customer(client)

    response = await client.post(
        "/auth/logout", json={"refresh_token": victim["refresh_token"]}, headers=bearer(attacker)
    )

    assert response.status_code == 404
    assert response.json()["type"] == "urn:fleet:users:refresh-token-not-found"
    assert (await _refresh(client, victim["refresh_token"])).status_code == 200


async def test_purge_deletes_expired_refresh_tokens_only(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    user, _ = await new_customer(client)
    user_id = uuid.UUID(user["id"])
    past = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(3):
        await connection.execute(
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                token_hash=uuid.uuid4().bytes * 2,
                family_id=uuid.uuid4(),
                user_id=user_id,
                created_at=past,
                expires_at=past,
            )
        )

    async with (
        AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session,
        unit_of_work(session),
    ):
        deleted = await auth_manager.purge_expired_refresh_tokens(session=session)
    remaining = await connection.scalar(
        select(func.count()).select_from(RefreshToken).where(RefreshToken.user_id == user_id)
    )

    assert deleted >= 3
    assert remaining == 1
