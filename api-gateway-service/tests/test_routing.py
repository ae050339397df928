"""The routing table of API.md, and the 404 for everything else, whatever its spelling."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from support.assertions import assert_get_and_head_only, assert_problem, assert_security_headers
from support.raw_http import raw_request
from support.servers import Gateway, Stub

ID = "3f1c9e2a-8d4b-4c6f-9a7e-2b5d1c0e8f47"


@pytest.mark.parametrize(
    ("method", "target", "service", "path", "query"),
    [
        ("GET", "/api/users", "user", "/users", ""),
        ("POST", "/api/users", "user", "/users", ""),
        (
            "GET",
            "/api/users?limit=5&cursor=abc%3D%3D",
            "user",
            "/users",
            "limit=5&cursor=abc%3D%3D",
        ),
        ("GET", "/api/users/me", "user", "/users/me", ""),
        ("PATCH", "/api/users/me", "user", "/users/me", ""),
        ("DELETE", "/api/users/me", "user", "/users/me", ""),
        ("GET", f"/api/users/{ID}", "user", f"/users/{ID}", ""),
        ("POST", "/api/auth/token", "user", "/auth/token", ""),
        ("POST", "/api/auth/refresh", "user", "/auth/refresh", ""),
        ("POST", "/api/auth/logout", "user", "/auth/logout", ""),
        ("GET", "/api/auth/jwks", "user", "/auth/jwks", ""),
        (
            "GET",
            "/api/products?q=red%20shoe&category=shoes&min_price=1.50&in_stock=true",
            "catalog",
            "/products",
            "q=red%20shoe&category=shoes&min_price=1.50&in_stock=true",
        ),
        ("POST", "/api/products", "catalog", "/products", ""),
        ("GET", f"/api/products/{ID}", "catalog", f"/products/{ID}", ""),
        ("PATCH", f"/api/products/{ID}", "catalog", f"/products/{ID}", ""),
        ("DELETE", f"/api/products/{ID}", "catalog", f"/products/{ID}", ""),
        ("GET", "/api/categories", "catalog", "/categories", ""),
        ("POST", "/api/orders", "order", "/orders", ""),
        (
            "GET",
            "/api/orders?status=confirmed&limit=20",
            "order",
            "/orders",
            "status=confirmed&limit=20",
        ),
        ("GET", f"/api/orders/{ID}", "order", f"/orders/{ID}", ""),
        ("POST", f"/api/orders/{ID}/cancel", "order", f"/orders/{ID}/cancel", ""),
        ("PATCH", f"/api/orders/{ID}/status", "order", f"/orders/{ID}/status", ""),
        ("POST", "/api/chat/generate_response", "chat", "/chat/generate_response", ""),
        ("POST", "/api/chat/get_embeddings", "chat", "/chat/get_embeddings", ""),
        ("POST", "/api/chat/count_tokens", "chat", "/chat/count_tokens", ""),
        ("GET", "/api/chat/conversations?limit=3", "chat", "/chat/conversations", "limit=3"),
        ("DELETE", f"/api/chat/conversations/{ID}", "chat", f"/chat/conversations/{ID}", ""),
        ("GET", "/api/chat/usage", "chat", "/chat/usage", ""),
    ],
)
def test_routes_reach_their_service_without_the_api_prefix(
    gateway: Gateway, method: str, target: str, service: str, path: str, query: str
) -> None:
    body = b'{"x": 1}' if method in {"POST", "PATCH"} else None
    response = raw_request(
        gateway.port, method, target, headers={"Content-Type": "application/json"}, body=body
    )

    assert response.status == 200
    echo = response.json()
    assert (echo["service"], echo["method"], echo["path"]) == (service, method, path)
    assert echo["query_string"] == query
    assert echo["body_bytes"] == (len(body) if body else 0)
    assert_security_headers(response.headers)


# POST and PATCH take another way through nginx (a rewrite to an internal location, for a new
# upstream connection): the path they reach must be the very same.
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_percent_encoded_characters_stay_encoded_upstream(gateway: Gateway, method: str) -> None:
    response = raw_request(gateway.port, method, "/api/products/a%20b%3Fc%25d%0A?x=%26", body=b"")

    echo = response.json()
    assert (echo["method"], echo["raw_path"]) == (method, "/products/a%20b%3Fc%25d%0A")
    assert echo["path"] == "/products/a b?c%d\n"
    assert echo["query_string"] == "x=%26"


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_dot_segments_inside_a_route_are_resolved_before_proxying(
    gateway: Gateway, method: str
) -> None:
    response = raw_request(gateway.port, method, "/api/products/x/../y/./z", body=b"")

    assert response.json()["raw_path"] == "/products/y/z"


@pytest.mark.parametrize(
    "target",
    [
        "/health",
        "/ready",
        "/metrics",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/inventory/reservations",
        "/internal/anything",
        "/users/me",
        "/products",
        "/",
        "/api",
        "/api/",
        "/api/health",
        "/api/metrics",
        "/api/openapi.yaml",
        "/api/inventory/reservations",
        "/api/internal/jobs",
        "/api/productsX",
        "/api/users2",
        "/api/orders-admin",
        "/api/chatbot",
        "/API/products",
        "/api/../health",
        "//health",
        "///ready",
        "/api//../metrics",
        "/api/products/..",
        "/api/products/../../inventory",
        "/api/products/../../inventory/reservations",
        "/api/products/..%2F..%2Fhealth",
        "/api/products/..%2f..%2fopenapi.json",
        "/api/products/%2e%2e/health",
        "/api/products/%2E%2E/%2E%2E/health",
        "/api/products%2F..%2F..%2Fhealth",
        "/api/%2e%2e/metrics",
        "/api/users/me/../../../ready",
        "/api/chat/..%2F..%2Fdocs",
        "/api/orders/%2e%2e%2f%2e%2e%2finternal/reconcile",
        "/api/users%0A",
        "/api/orders%0A/x",
        "/_gateway/problem",
        "/_gateway/fresh/user_service/api/users",
        "/_gateway/fresh/order_service/api/orders/x",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paths_outside_the_routing_table_answer_404_problem_and_reach_no_service(
    gateway: Gateway, stubs: dict[str, Stub], target: str, method: str
) -> None:
    request_id = f"forbidden-{uuid.uuid4().hex}"
    response = raw_request(
        gateway.port, method, target, headers={"X-Request-ID": request_id}, body=b""
    )

    problem = assert_problem(
        response.status,
        response.headers,
        response.body,
        expected_status=404,
        title="Not Found",
    )
    assert problem["request_id"] == request_id
    assert response.header("cache-control") == "no-store"
    assert all(request_id not in stub.request_ids() for stub in stubs.values())


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
def test_internal_endpoints_are_not_reachable_with_other_methods(
    gateway: Gateway, method: str
) -> None:
    response = raw_request(gateway.port, method, "/api/../inventory/reservations", body=b"{}")

    assert_problem(
        response.status, response.headers, response.body, expected_status=404, title="Not Found"
    )


def test_healthz_is_answered_by_the_gateway(gateway: Gateway, stubs: dict[str, Stub]) -> None:
    request_id = f"healthz-{uuid.uuid4().hex}"
    response = raw_request(gateway.port, "GET", "/healthz", headers={"X-Request-ID": request_id})

    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {"status": "ok"}
    assert response.header("x-request-id") == request_id
    assert_security_headers(response.headers)
    assert all(request_id not in stub.request_ids() for stub in stubs.values())


def test_healthz_answers_head_without_a_body(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "HEAD", "/healthz")

    assert response.status == 200
    assert response.body == b""


def test_healthz_refuses_other_methods_with_allow(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "POST", "/healthz", body=b"")

    assert_get_and_head_only(response)


@pytest.mark.parametrize(
    ("method", "target", "status", "title"),
    [
        ("TRACE", "/api/products", 405, "Method Not Allowed"),
        ("PROPFIND", "/api/products", 405, "Method Not Allowed"),
        ("BREW", "/api/products", 405, "Method Not Allowed"),
        ("CONNECT", "/api/products", 405, "Method Not Allowed"),
        ("CONNECT", "127.0.0.1:443", 400, "Bad Request"),
    ],
)
def test_methods_outside_the_api_answer_problem_and_reach_no_service(
    gateway: Gateway, stubs: dict[str, Stub], method: str, target: str, status: int, title: str
) -> None:
    request_id = f"method-{uuid.uuid4().hex}"
    response = raw_request(gateway.port, method, target, headers={"X-Request-ID": request_id})

    assert_problem(
        response.status, response.headers, response.body, expected_status=status, title=title
    )
    assert request_id not in stubs["catalog"].request_ids()


def test_unknown_methods_on_api_routes_get_the_allowed_list(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "PROPFIND", "/api/products")

    assert response.status == 405
    assert response.header("allow") == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def test_malformed_request_answers_400_problem(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "GET", "/api/products/%00")

    assert_problem(
        response.status, response.headers, response.body, expected_status=400, title="Bad Request"
    )


def test_overlong_uri_answers_414_problem(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "GET", "/api/products/" + "a" * 10_000)

    assert_problem(
        response.status, response.headers, response.body, expected_status=414, title="URI Too Long"
    )


def test_oversized_headers_answer_431_problem(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "GET", "/api/products", headers={"X-Big": "b" * 10_000})

    assert_problem(
        response.status,
        response.headers,
        response.body,
        expected_status=431,
        title="Request Header Fields Too Large",
    )


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/products/42?view=full", "/api/products/42?view=full"),
        ("/orders", "/api/orders"),
        ("/auth/token", "/api/auth/token"),
        ("http://127.0.0.1/users/me", "/api/users/me"),
        ("https://idp.example.com/auth/authorize", "https://idp.example.com/auth/authorize"),
    ],
)
def test_redirects_from_services_point_at_gateway_paths(
    gateway: Gateway, location: str, expected: str
) -> None:
    target = f"/api/products/_redirect?location={quote(location, safe='')}"
    response = raw_request(gateway.port, "GET", target)

    assert response.status == 307
    assert response.header("location") == expected


@pytest.mark.parametrize(
    ("code", "retry_after"), [(404, None), (409, None), (429, "7"), (503, "30")]
)
def test_service_errors_pass_through_untouched(
    gateway: Gateway, code: int, retry_after: str | None
) -> None:
    target = f"/api/orders/_status?code={code}"
    if retry_after:
        target += f"&retry_after={retry_after}"
    response = raw_request(gateway.port, "GET", target)

    assert response.status == code
    assert response.header("content-type") == "application/problem+json"
    assert response.json()["detail"] == f"order says {code}"
    assert response.header_values("retry-after") == ([retry_after] if retry_after else [])
    assert response.header_values("cache-control") == ["private, max-age=5"]
    assert_security_headers(response.headers)
