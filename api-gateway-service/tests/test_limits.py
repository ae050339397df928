"""Body size and rate limits, and the real client address they are keyed on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from conftest import GatewayFactory
from support.assertions import assert_problem
from support.servers import Gateway, Stub

TWO_MEGABYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def limited_gateway(make_gateway: GatewayFactory, upstreams: dict[str, str]) -> Gateway:
    """Low limits (per minute, so that no token comes back during a test) and 127.0.0.1 trusted.

    Trusting the test client as a proxy lets every test speak for its own client address through
    X-Forwarded-For, so that each starts with full buckets.
    """
    return make_gateway(
        upstreams=upstreams,
        name="gateway-limited",
        overrides={
            "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
            "GATEWAY_RATE_LIMIT": "1r/m",
            "GATEWAY_RATE_BURST": "5",
            "GATEWAY_AUTH_RATE_LIMIT": "1r/m",
            "GATEWAY_AUTH_RATE_BURST": "1",
            "GATEWAY_ORDER_RATE_LIMIT": "1r/m",
            "GATEWAY_ORDER_RATE_BURST": "1",
        },
    )


@pytest.fixture
def limited_client(limited_gateway: Gateway) -> Iterator[httpx.Client]:
    """A client of the limited gateway."""
    with httpx.Client(base_url=limited_gateway.url, timeout=10.0) as http:
        yield http


def _as_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_body_over_the_limit_answers_413_without_reaching_the_service(
    client: httpx.Client, stubs: dict[str, Stub]
) -> None:
    request_id = f"big-{uuid.uuid4().hex}"
    response = client.post(
        "/api/products", content=b"x" * TWO_MEGABYTES, headers={"X-Request-ID": request_id}
    )

    assert_problem(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        expected_status=413,
        title="Content Too Large",
    )
    assert request_id not in stubs["catalog"].request_ids()


def test_chunked_body_over_the_limit_answers_413_without_reaching_the_service(
    client: httpx.Client, stubs: dict[str, Stub]
) -> None:
    request_id = f"big-chunked-{uuid.uuid4().hex}"

    def chunks() -> Iterator[bytes]:
        for _ in range(32):
            yield b"y" * (TWO_MEGABYTES // 32)

    response = client.post(
        "/api/chat/get_embeddings", content=chunks(), headers={"X-Request-ID": request_id}
    )

    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert request_id not in stubs["chat"].request_ids()


def test_body_under_the_limit_is_passed_on_whole(client: httpx.Client) -> None:
    # Larger than nginx's in-memory body buffer, so it goes through the temp directory.
    body = b"z" * (512 * 1024)
    response = client.post("/api/products", content=body)

    assert response.status_code == 200
    assert response.json()["body_bytes"] == len(body)


def test_burst_answers_429_problem_with_retry_after(
    limited_client: httpx.Client, stubs: dict[str, Stub]
) -> None:
    request_id = f"burst-{uuid.uuid4().hex}"
    headers = {**_as_client("198.51.100.10"), "X-Request-ID": request_id}

    statuses = [limited_client.get("/api/products", headers=headers).status_code for _ in range(6)]
    rejected = limited_client.get("/api/products", headers=headers)

    assert statuses == [200] * 6
    assert_problem(
        rejected.status_code,
        rejected.headers.multi_items(),
        rejected.content,
        expected_status=429,
        title="Too Many Requests",
    )
    assert rejected.headers.get_list("retry-after") == ["1"]
    assert rejected.headers["cache-control"] == "no-store"
    received = [r for r in stubs["catalog"].requests() if r["request_id"] == request_id]
    assert len(received) == 6


def test_rate_limits_are_per_client_address(limited_client: httpx.Client) -> None:
    for _ in range(6):
        limited_client.get("/api/categories", headers=_as_client("198.51.100.20"))

    exhausted = limited_client.get("/api/categories", headers=_as_client("198.51.100.20"))
    other = limited_client.get("/api/categories", headers=_as_client("198.51.100.21"))

    assert (exhausted.status_code, other.status_code) == (429, 200)


def test_token_endpoint_is_limited_more_strictly(limited_client: httpx.Client) -> None:
    headers = _as_client("198.51.100.30")
    form = {"username": "someone@example.com", "password": "guess"}

    statuses = [
        limited_client.post("/api/auth/token", data=form, headers=headers).status_code
        for _ in range(3)
    ]
    other_auth = limited_client.get("/api/auth/jwks", headers=headers)
    signup = limited_client.post("/api/users", json={}, headers=headers)

    assert statuses == [200, 200, 429]
    assert (other_auth.status_code, signup.status_code) == (200, 200)


def test_token_limit_also_covers_the_trailing_slash_spelling(limited_client: httpx.Client) -> None:
    headers = _as_client("198.51.100.31")

    first = limited_client.post("/api/auth/token", headers=headers)
    second = limited_client.post("/api/auth/token/", headers=headers)
    third = limited_client.post("/api/auth/token/", headers=headers)

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]


def test_placing_orders_is_limited_more_strictly(limited_client: httpx.Client) -> None:
    headers = _as_client("198.51.100.40")

    statuses = [
        limited_client.post("/api/orders", json={"items": []}, headers=headers).status_code
        for _ in range(3)
    ]
    listing = limited_client.get("/api/orders", headers=headers)
    cancelling = limited_client.post("/api/orders/some-id/cancel", headers=headers)

    assert statuses == [200, 200, 429]
    assert (listing.status_code, cancelling.status_code) == (200, 200)


def test_trusted_proxy_supplies_the_client_address(limited_client: httpx.Client) -> None:
    # Only the right-most untrusted address counts; what the client prepended is ignored.
    response = limited_client.get(
        "/api/users/me", headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.9"}
    )

    seen = dict(response.json()["headers"])
    assert seen["x-real-ip"] == "203.0.113.9"
    assert seen["x-forwarded-for"] == "203.0.113.9"


def test_untrusted_client_cannot_choose_its_address(client: httpx.Client) -> None:
    response = client.get("/api/users/me", headers={"X-Forwarded-For": "203.0.113.9"})

    assert dict(response.json()["headers"])["x-real-ip"] == "127.0.0.1"


def test_default_limits_let_a_test_suite_through(client: httpx.Client) -> None:
    # A burst from one address, as an end-to-end suite makes, stays under the default limits.
    statuses = {client.get("/api/products").status_code for _ in range(100)}
    logins = {client.post("/api/auth/token").status_code for _ in range(25)}
    orders = {client.post("/api/orders", json={}).status_code for _ in range(40)}

    assert statuses == logins == orders == {200}
