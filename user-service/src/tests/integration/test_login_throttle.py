"""Failed logins are limited per account (the username), whatever the client's address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from common_libs.testing import eventually
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings
from tests.integration.conftest import PASSWORD, unique_email
from tests.support.users import register

LIMIT = 5
WINDOW_SECONDS = 60


async def _login(
    client: httpx.AsyncClient, username: str, password: str, *, address: str = "192.0.2.1"
) -> httpx.Response:
    # The address a gateway would pass on: the limit must not care which it is.
    return await client.post(
        "/auth/token",
        data={"username": username, "password": password},
        headers={"X-Forwarded-For": address, "X-Real-IP": address},
    )


async def _guess(client: httpx.AsyncClient, username: str, times: int) -> list[httpx.Response]:
    """Wrong passwords for ``username``, one after another, from a different address each."""
    return [
        await _login(client, username, f"guess number {n}", address=f"198.51.100.{n}")
        for n in range(times)
    ]


def _without_request_id(response: httpx.Response) -> dict[str, object]:
    return {k: v for k, v in response.json().items() if k != "request_id"}


async def test_failed_logins_past_the_limit_answer_429_even_with_the_right_password(
    committing_client: httpx.AsyncClient,
) -> None:
    victim = await register(committing_client)
    bystander = await register(committing_client)

    failures = await _guess(committing_client, victim["email"], LIMIT)
    throttled = await _login(committing_client, victim["email"], PASSWORD, address="203.0.113.9")
    other = await _login(committing_client, bystander["email"], PASSWORD)

    assert [response.status_code for response in failures] == [401] * LIMIT
    assert [response.headers["ratelimit"].split(";")[1] for response in failures] == [
        f"r={LIMIT - n}" for n in range(1, LIMIT + 1)
    ]
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert throttled.json()["type"] == "urn:fleet:common:rate-limited"
    assert throttled.json()["title"] == "Too Many Requests"
    assert 1 <= int(throttled.headers["retry-after"]) <= WINDOW_SECONDS
    assert throttled.headers["ratelimit-policy"] == f'"logins";q={LIMIT};w={WINDOW_SECONDS}'
    assert throttled.headers["ratelimit"] == f'"logins";r=0;t={throttled.headers["retry-after"]}'
    assert "access_token" not in throttled.text
    assert other.status_code == 200


async def test_an_unknown_username_is_throttled_exactly_like_a_known_one(
    committing_client: httpx.AsyncClient,
) -> None:
    known = (await register(committing_client))["email"]
    unknown = unique_email("nobody")

    answers = {
        username: [*await _guess(committing_client, username, LIMIT + 1)]
        for username in (known, unknown)
    }

    for username in (known, unknown):
        assert [r.status_code for r in answers[username]] == [401] * LIMIT + [429]
    for of_known, of_unknown in zip(answers[known], answers[unknown], strict=True):
        assert _without_request_id(of_known) == _without_request_id(of_unknown)
        assert of_known.headers["ratelimit-policy"] == of_unknown.headers["ratelimit-policy"]
        assert (
            of_known.headers["ratelimit"].split(";")[1]
            == of_unknown.headers["ratelimit"].split(";")[1]
        )


async def test_the_username_is_counted_in_its_normalised_form(
    committing_client: httpx.AsyncClient,
) -> None:
    email = (await register(committing_client))["email"]
    spellings = [email, email.upper(), f"  {email} ", email.title(), email.swapcase()]

    for spelling in spellings:
        assert (await _login(committing_client, spelling, "wrong password")).status_code == 401

    assert (await _login(committing_client, email, PASSWORD)).status_code == 429


async def test_concurrent_guesses_get_exactly_the_limit_checked(
    committing_client: httpx.AsyncClient,
) -> None:
    email = (await register(committing_client))["email"]

    answers = await asyncio.gather(
        *(
            _login(committing_client, email, f"parallel guess {n}", address=f"10.1.0.{n}")
            for n in range(LIMIT + 15)
        )
    )

    assert sorted(response.status_code for response in answers) == [401] * LIMIT + [429] * 15


async def test_a_successful_login_gives_the_allowance_back(
    committing_client: httpx.AsyncClient,
) -> None:
    email = (await register(committing_client))["email"]
    await _guess(committing_client, email, LIMIT - 1)

    assert (await _login(committing_client, email, PASSWORD)).status_code == 200
    after = await _guess(committing_client, email, LIMIT + 1)

    assert [response.status_code for response in after] == [401] * LIMIT + [429]


@pytest.fixture
async def short_window_client(
    service_settings: dict[str, object],
) -> AsyncIterator[httpx.AsyncClient]:
    """An instance whose failed-login window is one second."""
    app: FastAPI = create_app(make_settings(**service_settings, login_failure_window_seconds=1))
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        yield client


async def test_the_throttle_ends_with_its_window(short_window_client: httpx.AsyncClient) -> None:
    email = (await register(short_window_client))["email"]
    await _guess(short_window_client, email, LIMIT)
    assert (await _login(short_window_client, email, PASSWORD)).status_code == 429

    async def logs_in() -> bool:
        return (await _login(short_window_client, email, PASSWORD)).status_code == 200

    # Each poll before the window ends is a refused login: it must not push the end back.
    took = await eventually(logs_in, within=10, message="the throttle ends")

    assert took < 3
