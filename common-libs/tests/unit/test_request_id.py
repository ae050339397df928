"""Request ids: kept when sane, replaced when not, echoed back, visible to handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from common_libs.request_id import (
    REQUEST_ID_HEADER,
    RequestIdMiddleware,
    get_request_id,
    get_trace_headers,
    is_sane_request_id,
    new_request_id,
)

HEX_ID_LENGTH = 32


def build_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/whoami")
    async def whoami() -> dict[str, str | None]:
        return {"request_id": get_request_id()}

    @app.get("/trace")
    async def trace() -> dict[str, str]:
        return dict(get_trace_headers())

    @app.get("/spoof")
    async def spoof() -> JSONResponse:
        return JSONResponse({}, headers={REQUEST_ID_HEADER: "set-by-handler"})

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_sane_incoming_id_is_kept_and_echoed(client: httpx.AsyncClient) -> None:
    incoming = "A" * 100 + "-b.c_9"

    response = await client.get("/whoami", headers={REQUEST_ID_HEADER: incoming})

    assert response.headers[REQUEST_ID_HEADER] == incoming
    assert response.json() == {"request_id": incoming}


async def test_missing_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami")

    generated = response.headers[REQUEST_ID_HEADER]
    assert len(generated) == HEX_ID_LENGTH
    assert response.json() == {"request_id": generated}


@pytest.mark.parametrize(
    "insane",
    [
        pytest.param(b"a" * 129, id="129-characters"),
        pytest.param(b"two words", id="space"),
        pytest.param("caf\u00e9".encode(), id="unicode"),
        pytest.param(b"a/b", id="slash"),
        pytest.param(b"", id="empty"),
        pytest.param(b"x\r\nSet-Cookie: a=b", id="header-injection"),
    ],
)
async def test_insane_incoming_id_is_replaced(client: httpx.AsyncClient, insane: bytes) -> None:
    response = await client.get("/whoami", headers=[(REQUEST_ID_HEADER.encode(), insane)])

    replaced = response.headers[REQUEST_ID_HEADER]
    assert replaced.encode() != insane
    assert len(replaced) == HEX_ID_LENGTH
    assert response.json() == {"request_id": replaced}


async def test_each_request_gets_its_own_generated_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/whoami")
    second = await client.get("/whoami")

    assert first.headers[REQUEST_ID_HEADER] != second.headers[REQUEST_ID_HEADER]


async def test_response_carries_exactly_one_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/spoof", headers={REQUEST_ID_HEADER: "from-client"})

    assert response.headers.get_list(REQUEST_ID_HEADER) == ["from-client"]


async def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[tuple[Scope, str | None]] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, get_request_id()))
        await send({"type": "lifespan.startup.complete"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    await RequestIdMiddleware(lifespan_app)(scope, receive, send)

    assert seen == [(scope, None)]
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_no_request_id_outside_a_request() -> None:
    assert get_request_id() is None


def test_new_request_ids_are_sane_and_unique() -> None:
    ids = {new_request_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(is_sane_request_id(value) for value in ids)


@pytest.mark.parametrize(
    ("value", "is_sane"),
    [
        ("abc-DEF_123.x", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("a b", False),
        ("a\nb", False),
        ("\u00e9", False),
    ],
)
def test_sanity_rule_is_128_characters_of_a_safe_alphabet(value: str, is_sane: bool) -> None:
    assert is_sane_request_id(value) is is_sane


async def test_request_id_does_not_outlive_the_request_task() -> None:
    # ASGI servers run every request in a task of its own, as done here.
    transport = httpx.ASGITransport(build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        request = asyncio.create_task(client.get("/whoami", headers={REQUEST_ID_HEADER: "r-1"}))
        response = await request

    assert response.json() == {"request_id": "r-1"}
    assert get_request_id() is None


async def test_the_trace_context_of_the_request_is_kept_for_what_it_causes(
    client: httpx.AsyncClient,
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = await client.get(
        "/trace",
        headers=[
            ("traceparent", traceparent),
            ("tracestate", "vendor=1"),
            ("X-Request-ID", "first"),
            ("X-Request-ID", "second"),
        ],
    )

    assert response.json() == {"traceparent": traceparent, "tracestate": "vendor=1"}
    assert response.headers[REQUEST_ID_HEADER] == "first"
    assert (await client.get("/trace")).json() == {}
    assert (await client.get("/trace", headers={"traceparent": "0" * 600})).json() == {}
