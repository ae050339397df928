"""A deleted account's access token is refused within a second of users.user.deleted reaching
the USERS stream, though it has not expired: the running app's verifier (keys from the users
stub's JWKS, as in production) has a deny list that follows the session's NATS."""

from __future__ import annotations

import httpx
from common_libs.problems import PROBLEM_CONTENT_TYPE
from common_libs.testing import NatsServer, eventually
from common_libs.testing.events import publish_user_deleted

from tests.support.orders import Caller


async def test_a_deleted_customers_token_is_refused_within_a_second(
    client: httpx.AsyncClient, nats_server: NatsServer, customer: Caller, admin: Caller
) -> None:
    assert (await client.get("/orders", headers=customer.headers)).status_code == 200

    await publish_user_deleted(nats_server.url, customer.subject)
    responses: list[httpx.Response] = []

    async def refused() -> bool:
        responses.append(await client.get("/orders", headers=customer.headers))
        return responses[-1].status_code == 401

    await eventually(refused, within=1.0, message="the deleted account's token refused")

    response = responses[-1]
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The account no longer exists."'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"
    assert response.json()["detail"] == "The account no longer exists."
    assert (await client.get("/orders", headers=admin.headers)).status_code == 200
