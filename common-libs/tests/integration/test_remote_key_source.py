"""RemoteKeySource against a real JWKS served by a uvicorn process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from support.tokens import AUDIENCE, ISSUER, SigningKey, ed25519_key, jwks, mint, rsa_key
from support.upstream_app import upstream_server

from common_libs.auth import CurrentPrincipal, RemoteKeySource, TokenVerifier
from common_libs.errors import ServiceUnavailable
from common_libs.http_client import create_http_client
from common_libs.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers
from common_libs.service_app import open_token_verifier
from common_libs.testing import free_port

MAX_AGE = 300.0
MIN_REFETCH_INTERVAL = 10.0


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Issuer:
    """One key set published on the upstream app, and how often it was fetched."""

    def __init__(self, upstream: str, client: httpx.AsyncClient) -> None:
        self.url = f"{upstream}/jwks/{uuid.uuid4().hex}"
        self._client = client

    async def publish(self, *keys: SigningKey) -> None:
        await self.publish_document(jwks(*keys))

    async def publish_document(self, document: object) -> None:
        response = await self._client.put(self.url, json=document)
        assert response.status_code == 204

    async def fetches(self) -> int:
        response = await self._client.get(f"{self.url}/fetches")
        count: int = response.json()["count"]
        return count


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def issuer(upstream: str, http: httpx.AsyncClient) -> Issuer:
    return Issuer(upstream, http)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def key_source(url: str, client: httpx.AsyncClient, clock: FakeClock) -> RemoteKeySource:
    return RemoteKeySource(
        url,
        client=client,
        max_age=MAX_AGE,
        min_refetch_interval=MIN_REFETCH_INTERVAL,
        clock=clock,
    )


@pytest.fixture
def source(issuer: Issuer, http: httpx.AsyncClient, clock: FakeClock) -> RemoteKeySource:
    return key_source(issuer.url, http, clock)


async def test_keys_are_fetched_once_and_cached(
    issuer: Issuer, source: RemoteKeySource, clock: FakeClock, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)

    first = await source.get_key("ed-1")
    clock.advance(MAX_AGE)
    second = await source.get_key("ed-1")

    assert first is second
    assert first is not None
    assert first.algorithm_name == "EdDSA"
    assert await issuer.fetches() == 1


async def test_unknown_kid_triggers_one_refetch(
    issuer: Issuer, source: RemoteKeySource, clock: FakeClock, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)
    await source.get_key("ed-1")
    rotated = rsa_key("rsa-2")
    await issuer.publish(ed25519_signing_key, rotated)
    clock.advance(MIN_REFETCH_INTERVAL)

    key = await source.get_key("rsa-2")
    again = await source.get_key("rsa-2")

    assert key is not None
    assert key is again
    assert key.algorithm_name == "RS256"
    assert await issuer.fetches() == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    issuer: Issuer, source: RemoteKeySource, clock: FakeClock, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)
    await source.get_key("ed-1")

    clock.advance(MIN_REFETCH_INTERVAL - 1)
    too_soon = [await source.get_key(f"random-{n}") for n in range(5)]
    assert too_soon == [None] * 5
    assert await issuer.fetches() == 1

    clock.advance(1)
    later = [await source.get_key(f"random-{n}") for n in range(5, 10)]
    assert later == [None] * 5
    assert await issuer.fetches() == 2


async def test_keys_older_than_max_age_are_refetched(
    issuer: Issuer, source: RemoteKeySource, clock: FakeClock, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)
    await source.get_key("ed-1")
    await issuer.publish(ed25519_key("ed-2"))  # the issuer retired ed-1

    clock.advance(MAX_AGE + 1)

    assert await source.get_key("ed-1") is None
    assert await source.get_key("ed-2") is not None
    assert await issuer.fetches() == 2


async def test_concurrent_lookups_share_one_fetch(
    issuer: Issuer, source: RemoteKeySource, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)

    keys = await asyncio.gather(*(source.get_key("ed-1") for _ in range(10)))

    assert all(key is keys[0] and key is not None for key in keys)
    assert await issuer.fetches() == 1


async def test_cached_keys_are_served_while_the_issuer_is_down(
    tmp_path: Path, http: httpx.AsyncClient, clock: FakeClock, ed25519_signing_key: SigningKey
) -> None:
    server = upstream_server(tmp_path).start()
    try:
        issuer = Issuer(server.url, http)
        await issuer.publish(ed25519_signing_key)
        source = key_source(issuer.url, http, clock)
        cached = await source.get_key("ed-1")
    finally:
        server.stop()
    clock.advance(MAX_AGE + 1)

    assert cached is not None
    assert await source.get_key("ed-1") is cached


@pytest.mark.parametrize(
    "document",
    [
        pytest.param([], id="json-list"),
        pytest.param({"keys": "ed-1"}, id="keys-not-a-list"),
        pytest.param({"certificates": []}, id="no-keys-member"),
    ],
)
async def test_issuer_answering_something_else_than_a_key_set_raises_503(
    issuer: Issuer, source: RemoteKeySource, document: object
) -> None:
    await issuer.publish_document(document)

    with pytest.raises(ServiceUnavailable):
        await source.get_key("ed-1")


async def test_cached_keys_survive_an_answer_that_is_not_a_key_set(
    issuer: Issuer, source: RemoteKeySource, clock: FakeClock, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)
    cached = await source.get_key("ed-1")
    await issuer.publish_document([])
    clock.advance(MAX_AGE + 1)

    assert cached is not None
    assert await source.get_key("ed-1") is cached
    assert await issuer.fetches() == 2


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(None, id="connection-refused"),
        pytest.param("/no-such-path", id="http-404"),
        pytest.param("/not-json", id="not-json"),
    ],
)
async def test_issuer_without_keys_ever_fetched_raises_503(
    upstream: str, http: httpx.AsyncClient, clock: FakeClock, path: str | None
) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks" if path is None else upstream + path

    with pytest.raises(ServiceUnavailable) as unavailable:
        await key_source(url, http, clock).get_key("ed-1")

    assert unavailable.value.status == 503
    assert unavailable.value.headers == {"Retry-After": "5"}


async def test_verifier_accepts_tokens_signed_by_a_rotated_in_key(
    issuer: Issuer, ed25519_signing_key: SigningKey, upstream: str
) -> None:
    await issuer.publish(ed25519_signing_key)
    async with create_http_client(base_url=upstream) as client:
        clock = FakeClock()
        verifier = TokenVerifier(
            key_source(issuer.url, client, clock), issuer=ISSUER, audience=AUDIENCE
        )
        await verifier.verify(mint(ed25519_signing_key))
        rotated = ed25519_key("ed-rotated")
        await issuer.publish(ed25519_signing_key, rotated)
        clock.advance(MIN_REFETCH_INTERVAL)

        principal = await verifier.verify(mint(rotated))

    assert principal.role == "customer"


@dataclass(frozen=True)
class ReplicatedIssuerSettings:
    """``open_token_verifier``'s settings, user-service at two replicas' addresses."""

    jwks_url: str
    jwt_issuer: str = ISSUER
    jwt_audience: str = AUDIENCE
    http_timeout_seconds: float = 5.0
    deny_list_keep_seconds: float = 60.0


async def test_the_verifier_fetches_keys_from_a_replica_that_answers(
    issuer: Issuer, ed25519_signing_key: SigningKey
) -> None:
    await issuer.publish(ed25519_signing_key)
    dead = issuer.url.replace(issuer.url.split("/")[2], f"127.0.0.1:{free_port()}")
    async with AsyncExitStack() as stack:
        verifier = open_token_verifier(
            stack, ReplicatedIssuerSettings(jwks_url=f"{dead},{issuer.url}")
        )
        # The first fetch's turn is the dead replica's: it goes on to the live one.
        principal = await verifier.verify(mint(ed25519_signing_key))

    assert principal.role == "customer"
    assert await issuer.fetches() == 1


async def test_api_answers_503_problem_while_the_issuer_is_unreachable(
    http: httpx.AsyncClient, ed25519_signing_key: SigningKey
) -> None:
    app = FastAPI()
    install_problem_handlers(app)
    unreachable = RemoteKeySource(f"http://127.0.0.1:{free_port()}/jwks", client=http)
    app.state.token_verifier = TokenVerifier(unreachable, issuer=ISSUER, audience=AUDIENCE)

    @app.get("/users/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.subject}

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(
            "/users/me", headers={"Authorization": f"Bearer {mint(ed25519_signing_key)}"}
        )

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["Retry-After"] == "5"
