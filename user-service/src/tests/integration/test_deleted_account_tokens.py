"""A deleted account's tokens stop working: its access token is refused within a second (the
relay publishes users.user.deleted, the app's deny list follows it), and its refresh tokens went
with the account in the same transaction.

The deletion commits for real (``committing_client``), as the relay publishes committed rows only.
"""

from __future__ import annotations

import httpx
from common_libs.problems import PROBLEM_CONTENT_TYPE
from common_libs.testing import eventually
from fastapi import FastAPI
from sqlalchemy import func, select

from app.db.tables import RefreshToken
from tests.support.users import bearer, new_customer


async def test_a_deleted_accounts_access_token_is_refused_within_a_second(
    committing_client: httpx.AsyncClient,
) -> None:
    _, tokens = await new_customer(committing_client)
    assert (await committing_client.get("/users/me", headers=bearer(tokens))).status_code == 200

    deleted = await committing_client.delete("/users/me", headers=bearer(tokens))
    assert deleted.status_code == 204
    responses: list[httpx.Response] = []

    async def refused() -> bool:
        responses.append(await committing_client.get("/users/me", headers=bearer(tokens)))
        return responses[-1].status_code == 401

    await eventually(refused, within=1.0, message="the deleted account's token refused")

    response = responses[-1]
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The account no longer exists."'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"
    assert response.json()["detail"] == "The account no longer exists."
    assert response.json()["status"] == 401
    # Until the deny list had it, the token was valid and the account simply gone.
    assert {r.status_code for r in responses[:-1]} <= {404}
    other, other_tokens = await new_customer(committing_client)
    mine = await committing_client.get("/users/me", headers=bearer(other_tokens))
    assert (mine.status_code, mine.json()["id"]) == (200, other["id"])
    await committing_client.delete("/users/me", headers=bearer(other_tokens))


async def test_a_deleted_accounts_refresh_tokens_are_gone_with_it(
    app: FastAPI, committing_client: httpx.AsyncClient
) -> None:
    user, tokens = await new_customer(committing_client)

    deleted = await committing_client.delete("/users/me", headers=bearer(tokens))
    refresh = await committing_client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )

    assert deleted.status_code == 204
    assert refresh.status_code == 401
    assert refresh.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert refresh.json()["type"] == "urn:fleet:users:invalid-refresh-token"
    async with app.state.engine.connect() as connection:
        left = await connection.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.user_id == user["id"])
        )
    assert left == 0
