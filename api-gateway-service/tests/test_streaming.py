"""Server-sent events of the chat route pass through unbuffered; a client leaving is noticed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from conftest import GatewayFactory
from support.assertions import assert_security_headers
from support.processes import wait_until
from support.raw_upstream import RawUpstream
from support.servers import Gateway, Stub

# A read that waits longer than this means the gateway is holding the stream back.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=3.0)


@pytest.fixture(scope="module")
def raw_chat() -> Iterator[RawUpstream]:
    """A chat upstream that streams without chunked encoding."""
    with RawUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def raw_chat_gateway(
    make_gateway: GatewayFactory, upstreams: dict[str, str], raw_chat: RawUpstream
) -> Gateway:
    """The default settings, with the raw upstream as chat-llm-service."""
    return make_gateway(upstreams=upstreams | {"chat": raw_chat.address}, name="gateway-raw-chat")


def _next_event(lines: Iterator[str]) -> list[str]:
    """Read lines up to the blank line that ends one event."""
    event: list[str] = []
    for line in lines:
        if line == "":
            return event
        event.append(line)
    raise AssertionError(f"stream ended inside an event: {event}")


def test_first_event_arrives_before_the_upstream_sends_the_last(
    client: httpx.Client, stubs: dict[str, Stub]
) -> None:
    key = uuid.uuid4().hex
    # The stub holds the last event back until this test releases it, which it only does after it
    # has read the first one through the gateway. A buffering gateway would hold the first event
    # back too, and the read below would time out.
    with client.stream(
        "POST", f"/api/chat/_sse?stream={key}", json={"stream": True}, timeout=STREAM_TIMEOUT
    ) as response:
        lines = response.iter_lines()
        first = _next_event(lines)
        assert key not in stubs["chat"].disconnects()
        stubs["chat"].release(key)
        last = _next_event(lines)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["x-accel-buffering"] == "no"
    assert first == ['data: {"delta": "first"}']
    assert last == ["event: done", f'data: {{"stream": "{key}"}}']
    assert_security_headers(response.headers.multi_items())


def test_stream_delimited_by_close_is_not_held_in_gateway_buffers(
    raw_chat_gateway: Gateway, raw_chat: RawUpstream
) -> None:
    # uvicorn streams with chunked encoding, which nginx forwards chunk by chunk even when it
    # buffers; a close-delimited stream shows whether proxy_buffering is really off on this route.
    key = uuid.uuid4().hex
    with (
        httpx.Client(base_url=raw_chat_gateway.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("POST", f"/api/chat/generate_response/sse?stream={key}") as response,
    ):
        lines = response.iter_lines()
        first = _next_event(lines)
        raw_chat.release(key)
        last = _next_event(lines)

    assert first == ['data: {"delta": "first"}']
    assert last == ["event: done", "data: {}"]
    assert raw_chat.hits("/chat/generate_response/sse") == 1


def test_client_leaving_a_stream_stops_the_upstream_call(
    client: httpx.Client, stubs: dict[str, Stub]
) -> None:
    key = uuid.uuid4().hex
    with client.stream("GET", f"/api/chat/_sse?stream={key}") as response:
        assert _next_event(response.iter_lines()) == ['data: {"delta": "first"}']
    # Leaving the block closed the connection to the gateway mid-stream.

    wait_until(
        lambda: key in stubs["chat"].disconnects(),
        timeout=5,
        message="upstream saw the client leave",
    )


def test_non_streaming_chat_answers_are_ordinary_json(client: httpx.Client) -> None:
    response = client.post("/api/chat/count_tokens", json={"text": "hello"})

    assert response.status_code == 200
    assert response.json()["path"] == "/chat/count_tokens"
    assert_security_headers(response.headers.multi_items())
