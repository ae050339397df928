"""Malformed requests: the gateway refuses them itself, as problem+json, before a service sees them.

The upstreams run uvicorn with httptools, the services' HTTP parser: whatever nginx forwarded and
that parser refuses would come back as uvicorn's plain-text "400 Invalid HTTP request received.".
The requests go through a plain socket, byte for byte (http.client refuses to send most of them).
"""

from __future__ import annotations

import uuid

import pytest

from support.assertions import assert_problem
from support.raw_http import raw_exchange
from support.servers import Gateway, Stub


def _get(target: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([b"GET " + target + b" HTTP/1.1", b"Host: gateway", *headers, b"", b""])


def _request(method: bytes, target: bytes, header: bytes) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: gateway"]
    lines += [header] if header else []
    lines += [b"Content-Length: 2"] if method == b"POST" else []
    body = b"{}" if method == b"POST" else b""
    return b"\r\n".join([*lines, b"", body])


# id: (method, route prefix, what follows the test's unique path segment, header line, stub)
_MALFORMED = {
    "\\x01 in Authorization": (
        b"GET",
        b"/api/users/",
        b"",
        b"Authorization: Bearer a\x01b",
        "user",
    ),
    "\\x7f in Authorization": (
        b"GET",
        b"/api/users/",
        b"",
        b"Authorization: Bearer a\x7fb",
        "user",
    ),
    "\\x1f in User-Agent": (b"GET", b"/api/products/", b"", b"User-Agent: probe\x1f1.0", "catalog"),
    "\\x0b in Idempotency-Key": (
        b"POST",
        b"/api/orders/",
        b"",
        b"Idempotency-Key: k\x0by",
        "order",
    ),
    "\\x01 in Content-Type": (b"POST", b"/api/users/", b"", b"Content-Type: a\x01b", "user"),
    "\\x1b in traceparent": (b"GET", b"/api/chat/", b"", b"traceparent: 00-\x1b[31m", "chat"),
    "\\x08 in Accept": (b"GET", b"/api/products/", b"", b"Accept: text/\x08html", "catalog"),
    "bare CR in a header": (b"GET", b"/api/users/", b"", b"X-Note: a\rb", "user"),
    "NUL in a header": (b"GET", b"/api/users/", b"", b"X-Note: a\x00b", "user"),
    "raw 0x80-0xff in the path": (b"GET", b"/api/users/", b"\x80\xff", b"", "user"),
    "raw UTF-8 in the path": (b"GET", b"/api/products/", b"caf\xc3\xa9", b"", "catalog"),
    "raw 0x80-0xff in the query": (b"GET", b"/api/products/", b"?q=\x80\xff", b"", "catalog"),
    "raw UTF-8 in the query": (b"GET", b"/api/products/", b"?q=caf\xc3\xa9", b"", "catalog"),
    "\\x7f in the query": (b"GET", b"/api/products/", b"?q=a\x7fb", b"", "catalog"),
    "\\x01 in the path": (b"GET", b"/api/users/", b"\x01", b"", "user"),
    "NUL in the path": (b"GET", b"/api/users/", b"\x00", b"", "user"),
}


@pytest.mark.parametrize("case", list(_MALFORMED.values()), ids=list(_MALFORMED))
def test_malformed_request_is_refused_with_a_problem(
    gateway: Gateway, stubs: dict[str, Stub], case: tuple[bytes, bytes, bytes, bytes, str]
) -> None:
    method, prefix, tail, header, service = case
    marker = uuid.uuid4().hex

    response = raw_exchange(gateway.port, _request(method, prefix + marker.encode() + tail, header))

    assert_problem(
        response.status,
        response.headers,
        response.body,
        expected_status=400,
        title="Bad Request",
    )
    assert response.header("cache-control") == "no-store"
    # Refused by the gateway: the service never saw it.
    assert not [record for record in stubs[service].requests() if marker in record["path"]]


def test_control_character_in_a_header_the_gateway_does_not_forward_is_dropped(
    gateway: Gateway,
) -> None:
    # Only the headers the gateway forwards can reach a service's parser; any other is left out.
    response = raw_exchange(gateway.port, _get(b"/api/users/unlisted", b"X-Note: a\x01b"))

    assert response.status == 200
    names = [name for name, _ in response.json()["headers"]]
    assert "x-note" not in names


def test_control_character_in_the_request_id_gets_a_generated_id(gateway: Gateway) -> None:
    # X-Request-ID is never forwarded as sent: an insane one is replaced (API.md), not refused.
    response = raw_exchange(gateway.port, _get(b"/api/users/rid", b"X-Request-ID: ab\x01c"))

    assert response.status == 200
    request_id = response.header("x-request-id")
    assert request_id is not None
    assert len(request_id) == 32
    assert ["x-request-id", request_id] in response.json()["headers"]


def test_percent_encoded_bytes_still_reach_the_service(gateway: Gateway) -> None:
    # The refusal is about raw bytes only: the same characters, percent-encoded, are a valid target.
    response = raw_exchange(gateway.port, _get(b"/api/products/caf%C3%A9?q=%80%FF%01"))

    assert response.status == 200
    echo = response.json()
    assert echo["raw_path"] == "/products/caf%C3%A9"
    assert echo["query_string"] == "q=%80%FF%01"
