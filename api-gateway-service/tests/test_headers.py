"""Headers: what services receive (only what the gateway vouches for) and what clients get back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support.assertions import assert_no_server_details, assert_security_headers
from support.raw_http import raw_request
from support.servers import Gateway

# Headers a client must not be able to set for a service (see nginx.conf for the reasoning).
REMOVED_HEADERS = {
    "Forwarded": "for=203.0.113.66;proto=https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/admin",
    "X-Forwarded-Server": "evil",
    "X-Forwarded-Ssl": "on",
    "X-Client-IP": "203.0.113.66",
    "X-Cluster-Client-IP": "203.0.113.66",
    "True-Client-IP": "203.0.113.66",
    "X-Original-URL": "/health",
    "X-Original-URI": "/inventory/reservations",
    "X-Rewrite-URL": "/metrics",
    "X-HTTP-Method-Override": "DELETE",
    "X-HTTP-Method": "DELETE",
    "X-Method-Override": "DELETE",
    "X-User-ID": "00000000-0000-0000-0000-000000000000",
    "X-User-Role": "admin",
    "X-User-Email": "admin@example.com",
    "X-Auth-Request-User": "admin",
    "X-Auth-Request-Email": "admin@example.com",
    "X-Authenticated-User": "admin",
    "Proxy": "http://evil.example:3128",
}


def _upstream_headers(echo: dict[str, Any]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for key, value in echo["headers"]:
        headers.setdefault(key, []).append(value)
    return headers


def test_client_cannot_set_fleet_headers(client: httpx.Client) -> None:
    spoofed = {**REMOVED_HEADERS, "X-Forwarded-For": "203.0.113.66", "X-Real-IP": "203.0.113.66"}
    spoofed |= {"X-Forwarded-Proto": "https"}

    response = client.get("/api/users/me", headers=spoofed)

    seen = _upstream_headers(response.json())
    assert not {name.lower() for name in REMOVED_HEADERS} & set(seen)
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-real-ip"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["host"] == ["127.0.0.1"]


def test_headers_spelled_with_underscores_are_dropped(gateway: Gateway) -> None:
    response = raw_request(
        gateway.port,
        "GET",
        "/api/users/me",
        headers={"X_User_ID": "smuggled", "X_Forwarded_For": "203.0.113.66"},
    )

    seen = _upstream_headers(response.json())
    assert not any("smuggled" in values or "203.0.113.66" in values for values in seen.values())


def test_ordinary_headers_reach_the_service(client: httpx.Client) -> None:
    response = client.post(
        "/api/orders",
        headers={"Authorization": "Bearer token", "Idempotency-Key": "key-1"},
        json={"items": []},
    )

    seen = _upstream_headers(response.json())
    assert seen["authorization"] == ["Bearer token"]
    assert seen["idempotency-key"] == ["key-1"]
    assert seen["content-type"] == ["application/json"]


# Every header the gateway passes on from a client (nginx.conf, README.md "What a request gets").
FORWARDED_HEADERS = {
    "Authorization": "Bearer token",
    "Idempotency-Key": "key-2",
    "Content-Type": "application/json",
    "Content-Encoding": "identity",
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "Accept-Language": "en",
    "User-Agent": "client/1.0",
    "Cache-Control": "no-cache",
    "If-Match": '"v1"',
    "If-None-Match": '"v2"',
    "If-Modified-Since": "Thu, 03 Dec 2026 10:00:00 GMT",
    "If-Unmodified-Since": "Thu, 03 Dec 2026 11:00:00 GMT",
    "Last-Event-ID": "42",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "vendor=value",
    "baggage": "tenant=shop",
}


def test_exactly_the_listed_headers_reach_the_service(gateway: Gateway) -> None:
    response = raw_request(
        gateway.port,
        "POST",
        "/api/orders",
        headers={**FORWARDED_HEADERS, "X-Unlisted": "dropped", "Cookie": "session=1"},
        body=b"{}",
    )

    seen = _upstream_headers(response.json())
    assert {name: seen.get(name.lower()) for name in FORWARDED_HEADERS} == {
        name: [value] for name, value in FORWARDED_HEADERS.items()
    }
    set_by_gateway = {"host", "x-request-id", "x-real-ip", "x-forwarded-for", "x-forwarded-proto"}
    listed = {name.lower() for name in FORWARDED_HEADERS}
    assert set(seen) == listed | set_by_gateway | {"content-length"}


def test_upstreams_get_http_1_1_over_reused_connections(client: httpx.Client) -> None:
    # One client connection is served by one worker, which keeps its upstream connection alive.
    first = client.get("/api/categories").json()
    second = client.get("/api/categories").json()

    assert first["http_version"] == second["http_version"] == "1.1"
    assert first["client_port"] == second["client_port"]
    assert "connection" not in _upstream_headers(second)


def test_security_headers_on_proxied_200(client: httpx.Client) -> None:
    response = client.get("/api/products")

    assert response.status_code == 200
    assert_security_headers(response.headers.multi_items())
    # The stub sent its own X-Frame-Options and X-Powered-By; the gateway's alone reach the client.
    assert response.headers.get_list("x-frame-options") == ["DENY"]


def test_security_headers_on_gateway_404(client: httpx.Client) -> None:
    response = client.get("/docs")

    assert response.status_code == 404
    assert_security_headers(response.headers.multi_items())


def test_upstream_server_header_and_nginx_version_are_hidden(client: httpx.Client) -> None:
    for response in (client.get("/api/users"), client.get("/healthz"), client.get("/nowhere")):
        assert_no_server_details(response.headers.multi_items())


@pytest.mark.parametrize("path", ["/api/products", "/healthz"])
def test_headers_reserved_for_gateway_answers_are_absent_from_others(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path)

    assert "retry-after" not in response.headers
    assert "allow" not in response.headers
    assert "x-accel-buffering" not in response.headers
