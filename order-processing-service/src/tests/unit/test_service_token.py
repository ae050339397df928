"""The service token: fetched with the client-credentials grant, reused until near expiry.

user-service is replaced at the HTTP boundary by the users stub app, in process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from common_libs.testing import TestTokenIssuer
from pydantic import SecretStr

from app.clients.resilience import Deadline
from app.clients.service_token import ServiceCredentialsRefused, ServiceTokenProvider
from tests.support.users_stub import UsersStub


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def users() -> UsersStub:
    return UsersStub(TestTokenIssuer(), client_id="orders", client_secret="right", expires_in=300)


@pytest.fixture
async def http(users: UsersStub) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=users.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://users") as client:
        yield client


def _provider(http: httpx.AsyncClient, clock: Clock, secret: str = "right") -> ServiceTokenProvider:
    return ServiceTokenProvider(
        http=http, client_id="orders", client_secret=SecretStr(secret), clock=clock
    )


async def test_token_is_fetched_once_and_reused(http: httpx.AsyncClient, users: UsersStub) -> None:
    provider = _provider(http, Clock())

    first = await provider.get(deadline=Deadline.within(5))
    second = await provider.get(deadline=Deadline.within(5))

    assert first == second
    assert users.token_requests == 1


async def test_token_is_renewed_shortly_before_it_expires(
    http: httpx.AsyncClient, users: UsersStub
) -> None:
    clock = Clock()
    provider = _provider(http, clock)
    first = await provider.get(deadline=Deadline.within(5))

    clock.now += 269  # 300 s lifetime, renewed 30 s early
    still = await provider.get(deadline=Deadline.within(5))
    clock.now += 2
    renewed = await provider.get(deadline=Deadline.within(5))

    assert still == first
    assert renewed != first
    assert users.token_requests == 2


async def test_refused_token_is_replaced(http: httpx.AsyncClient, users: UsersStub) -> None:
    provider = _provider(http, Clock())
    first = await provider.get(deadline=Deadline.within(5))

    provider.invalidate(first)
    second = await provider.get(deadline=Deadline.within(5))

    assert second != first
    assert users.token_requests == 2


async def test_wrong_client_secret_is_reported_without_retrying(
    http: httpx.AsyncClient, users: UsersStub
) -> None:
    provider = _provider(http, Clock(), secret="wrong")

    with pytest.raises(ServiceCredentialsRefused):
        await provider.get(deadline=Deadline.within(5))

    assert users.token_requests == 1
