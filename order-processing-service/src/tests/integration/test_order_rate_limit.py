"""POST /orders is limited per user by the service itself, on every replica, from any address."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from app.config import Settings
from tests.support.apps import running_app
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller, order_body, place

LIMIT = 3
WINDOW_SECONDS = 60


async def test_one_users_burst_beyond_the_limit_is_refused_on_every_replica_and_others_order_on(
    service_settings: Callable[..., Settings],
    catalog: CatalogStub,
    make_caller: Callable[..., Caller],
) -> None:
    settings = service_settings(place_order_limit=LIMIT, place_order_window_seconds=WINDOW_SECONDS)
    product = catalog.add_product(stock=100)
    body = order_body((product, 1))
    hasty, other = make_caller(), make_caller("admin")
    async with running_app(settings) as (_, first), running_app(settings) as (_, second):
        replicas = (first, second)
        # Through both replicas at once, as from several gateways and client addresses.
        burst = await asyncio.gather(
            *(
                place(replicas[n % 2], hasty, body, headers={"X-Forwarded-For": f"10.0.0.{n}"})
                for n in range(LIMIT + 5)
            )
        )
        others = [await place(replicas[n % 2], other, body) for n in range(LIMIT)]

    statuses = sorted(response.status_code for response in burst)
    assert statuses == [201] * LIMIT + [429] * 5, [r.text for r in burst]
    refused = [response for response in burst if response.status_code == 429]
    for response in refused:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:fleet:common:rate-limited"
        assert response.json()["title"] == "Too Many Requests"
        assert 1 <= int(response.headers["retry-after"]) <= WINDOW_SECONDS
        assert response.headers["ratelimit-policy"] == f'"orders";q={LIMIT};w={WINDOW_SECONDS}'
        assert response.headers["ratelimit"] == (
            f'"orders";r=0;t={response.headers["retry-after"]}'
        )
        assert response.json()["detail"].startswith(
            f"Too many orders: at most {LIMIT} per {WINDOW_SECONDS} s for one user"
        )
    admitted = sorted(
        response.headers["ratelimit"].split(";")[1]
        for response in burst
        if response.status_code == 201
    )
    assert admitted == [f"r={n}" for n in range(LIMIT)]
    assert [response.status_code for response in others] == [201] * LIMIT
    assert catalog.available(product) == 100 - 2 * LIMIT


async def test_the_default_limit_is_ten_orders_a_minute(
    client: httpx.AsyncClient, catalog: CatalogStub, customer: Caller
) -> None:
    product = catalog.add_product(stock=100)

    answers = [await place(client, customer, order_body((product, 1))) for _ in range(11)]

    assert [response.status_code for response in answers] == [201] * 10 + [429]
    refused = answers[-1]
    assert refused.json()["type"] == "urn:fleet:common:rate-limited"
    assert refused.headers["ratelimit-policy"] == '"orders";q=10;w=60'
    assert refused.headers["ratelimit"] == f'"orders";r=0;t={refused.headers["retry-after"]}'
    assert answers[0].headers["ratelimit-policy"] == '"orders";q=10;w=60'
    assert answers[0].headers["ratelimit"].startswith('"orders";r=9;t=')
