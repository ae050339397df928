"""create_http_client against a real uvicorn server: request ids forwarded, timeouts honoured."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from httpx_aiohttp import AiohttpTransport

from common_libs.http_client import (
    FailoverTransport,
    PeerClient,
    create_http_client,
    tls_context,
)
from common_libs.request_id import REQUEST_ID_HEADER, RequestIdMiddleware, request_id_var
from common_libs.telemetry import TracingTransport


@pytest.fixture
async def client(upstream: str) -> AsyncIterator[httpx.AsyncClient]:
    async with create_http_client(base_url=upstream) as client:
        yield client


@pytest.fixture
def current_request_id() -> Iterator[str]:
    """Act as if a request with this id were being handled."""
    token = request_id_var.set("incoming-req-1")
    try:
        yield "incoming-req-1"
    finally:
        request_id_var.reset(token)


async def headers_seen_upstream(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> dict[str, str]:
    response = await client.get("/echo", headers=headers)
    response.raise_for_status()
    headers: dict[str, str] = response.json()["headers"]
    return headers


async def test_current_request_id_is_forwarded(
    client: httpx.AsyncClient, current_request_id: str
) -> None:
    headers = await headers_seen_upstream(client)

    assert headers["x-request-id"] == current_request_id


async def test_explicit_request_id_header_is_not_overwritten(
    client: httpx.AsyncClient, current_request_id: str
) -> None:
    headers = await headers_seen_upstream(client, headers={REQUEST_ID_HEADER: "explicit-1"})

    assert headers["x-request-id"] == "explicit-1"


async def test_no_request_id_is_sent_outside_a_request(client: httpx.AsyncClient) -> None:
    headers = await headers_seen_upstream(client)

    assert "x-request-id" not in headers


async def test_default_headers_are_sent_on_every_call(upstream: str) -> None:
    async with create_http_client(base_url=upstream, headers={"X-Caller": "orders"}) as client:
        headers = await headers_seen_upstream(client)

    assert headers["x-caller"] == "orders"


@pytest.mark.parametrize(
    "client_timeout",
    [pytest.param(0.2, id="seconds"), pytest.param(httpx.Timeout(0.2), id="httpx-timeout")],
)
async def test_slow_upstream_raises_a_timeout(
    upstream: str, client_timeout: float | httpx.Timeout
) -> None:
    async with create_http_client(base_url=upstream, timeout=client_timeout) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get("/slow", params={"seconds": 1})


async def test_upstream_within_the_timeout_answers(upstream: str) -> None:
    async with create_http_client(base_url=upstream, timeout=5) as client:
        response = await client.get("/slow", params={"seconds": 0.01})

    assert response.json() == {"status": "late"}


async def test_handler_forwards_its_request_id_to_the_upstream(upstream: str) -> None:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/orders")
    async def list_orders(request: Request) -> dict[str, str]:
        upstream_client: httpx.AsyncClient = request.app.state.catalog
        seen = await upstream_client.get("/echo")
        return {"catalog_saw": seen.json()["headers"]["x-request-id"]}

    async with create_http_client(base_url=upstream) as catalog:
        app.state.catalog = catalog
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/orders", headers={REQUEST_ID_HEADER: "chain-7"})

    assert response.json() == {"catalog_saw": "chain-7"}


async def test_a_cookie_set_by_the_peer_is_not_sent_on_later_calls(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/set-cookie")
    assert "session=for-one-user-only" in answer.headers["set-cookie"]

    headers = await headers_seen_upstream(client)

    assert "cookie" not in headers
    assert not client.cookies


def test_a_peer_client_refuses_a_cookie_jar() -> None:
    with pytest.raises(TypeError, match="no cookies"):
        PeerClient(cookies={"session": "shared"})
    client = create_http_client(base_url="http://peer")
    with pytest.raises(TypeError, match="no cookies"):
        client.cookies.set("session", "shared")
    with pytest.raises(TypeError, match="no cookies"):
        client.cookies = {"session": "shared"}
    client.cookies = {}
    assert not client.cookies


def _tls_of(client: httpx.AsyncClient) -> ssl.SSLContext:
    transport = client._transport
    if isinstance(transport, FailoverTransport):
        transport = transport._transport
    assert isinstance(transport, TracingTransport)
    assert isinstance(transport.transport, AiohttpTransport)
    return transport.transport.ssl_context


def test_every_client_shares_one_verifying_tls_context() -> None:
    one = create_http_client(base_url="http://peer")
    another = create_http_client(base_url="https://peer-a:8443,https://peer-b:8443")

    assert _tls_of(one) is _tls_of(another) is tls_context()
    assert tls_context().verify_mode is ssl.CERT_REQUIRED
    assert tls_context().check_hostname


@pytest.mark.parametrize(
    "path",
    ["/echo", "/echo?a=1&b=%20two", "/echo/../echo", "/./echo", "echo", "/echo#fragment"],
)
@pytest.mark.parametrize("prefix", ["", "/", "/api/..", "/api/../"])
async def test_paths_join_the_base_url_as_httpx_joins_them(
    upstream: str, prefix: str, path: str
) -> None:
    base = upstream + prefix
    async with create_http_client(base_url=base) as peer, httpx.AsyncClient(base_url=base) as ref:
        assert peer.build_request("GET", path).url == ref.build_request("GET", path).url
        response = await peer.get(path)

    assert response.status_code == 200
    assert response.json()["url"] == str(ref.build_request("GET", path).url)
