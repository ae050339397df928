"""Body size and rate limits, and the real client address they are keyed on."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from conftest import GatewayFactory
from support.assertions import assert_problem
from support.servers import SERVICE_DIR, Gateway, Stub

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
    # 1r/m is one request per 62.5 s in nginx (its rates are whole requests per 1000 s).
    assert rejected.headers.get_list("retry-after") == ["63"]
    assert rejected.headers.get_list("ratelimit-policy") == ['"per-address";q=1;w=60']
    assert rejected.headers.get_list("ratelimit") == ['"per-address";r=0;t=63']
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


def _refused(response: httpx.Response) -> dict[str, list[str]]:
    """The gateway's 429 problem, and its rate-limit fields."""
    assert_problem(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        expected_status=429,
        title="Too Many Requests",
    )
    return {
        name: response.headers.get_list(name)
        for name in ("retry-after", "ratelimit-policy", "ratelimit")
    }


def test_the_login_limits_429_names_its_own_policy(limited_client: httpx.Client) -> None:
    headers = _as_client("198.51.100.32")

    accepted = limited_client.post("/api/auth/token", headers=headers)
    second = limited_client.post("/api/auth/token", headers=headers)
    refused = limited_client.post("/api/auth/token", headers=headers)

    assert (accepted.status_code, second.status_code) == (200, 200)
    assert "ratelimit" not in accepted.headers
    assert _refused(refused) == {
        "retry-after": ["63"],
        "ratelimit-policy": ['"per-address-login";q=1;w=60'],
        "ratelimit": ['"per-address-login";r=0;t=63'],
    }


def test_the_order_limits_429_names_its_own_policy(limited_client: httpx.Client) -> None:
    headers = _as_client("198.51.100.41")

    for _ in range(2):
        assert limited_client.post("/api/orders", json={}, headers=headers).status_code == 200
    refused = limited_client.post("/api/orders/", json={}, headers=headers)

    assert _refused(refused) == {
        "retry-after": ["63"],
        "ratelimit-policy": ['"per-address-orders";q=1;w=60'],
        "ratelimit": ['"per-address-orders";r=0;t=63'],
    }


def test_an_order_refused_by_the_general_limit_names_the_general_policy(
    limited_client: httpx.Client,
) -> None:
    # The general bucket is spent on reads; the order bucket is still full.
    headers = _as_client("198.51.100.42")
    for _ in range(6):
        assert limited_client.get("/api/products", headers=headers).status_code == 200

    refused = limited_client.post("/api/orders", json={}, headers=headers)

    assert _refused(refused)["ratelimit-policy"] == ['"per-address";q=1;w=60']
    assert _refused(refused)["ratelimit"] == ['"per-address";r=0;t=63']


def test_a_services_own_429_passes_with_its_own_fields(client: httpx.Client) -> None:
    response = client.get("/api/orders/_status", params={"code": "429", "retry_after": "7"})

    assert response.status_code == 429
    assert response.json()["detail"] == "order says 429"
    assert response.headers.get_list("retry-after") == ["7"]
    assert "ratelimit-policy" not in response.headers
    assert "ratelimit" not in response.headers


def test_per_second_rates_give_quota_window_and_retry_after(
    make_gateway: GatewayFactory, upstreams: dict[str, str]
) -> None:
    gateway = make_gateway(
        upstreams=upstreams,
        name="gateway-limited-per-second",
        overrides={
            "GATEWAY_ORDER_RATE_LIMIT": "2r/s",
            "GATEWAY_ORDER_RATE_BURST": "1",
        },
    )
    with httpx.Client(base_url=gateway.url, timeout=10.0) as http:
        statuses = []
        refused = None
        # Two per second refill: a burst of requests on one connection meets the limit quickly.
        for _ in range(20):
            response = http.post("/api/orders", json={})
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused = response
                break

    assert refused is not None, statuses
    assert _refused(refused) == {
        "retry-after": ["1"],
        "ratelimit-policy": ['"per-address-orders";q=2;w=1'],
        "ratelimit": ['"per-address-orders";r=0;t=1'],
    }


def _reset_table() -> list[tuple[str, str]]:
    """The (rate pattern, seconds) lines of nginx.conf's $gateway_rate_limit_reset map."""
    text = (SERVICE_DIR / "config" / "nginx.conf").read_text(encoding="utf-8")
    block = re.search(
        r"map \$gateway_rate_limit_rate \$gateway_rate_limit_reset \{(.*?)\n    \}", text, re.S
    )
    assert block is not None
    entries = []
    for line in block.group(1).strip().splitlines():
        key, value = line.strip().rstrip(";").rsplit(None, 1)
        entries.append((key.strip('"'), value))
    return entries


def _nginx_map_lookup(entries: list[tuple[str, str]], value: str) -> str:
    """An nginx map's answer: an exact key first, else the first matching regex, else default."""
    exact = {key: result for key, result in entries if not key.startswith("~")}
    if value in exact:
        return exact[value]
    for key, result in entries:
        if key.startswith("~") and re.search(key[1:], value):
            return result
    return exact["default"]


@pytest.mark.parametrize("unit", ["s", "m"])
def test_retry_after_is_the_time_nginx_takes_to_drain_one_request(unit: str) -> None:
    entries = _reset_table()
    for quota in range(1, 1001):
        # ngx_http_limit_req_zone: rate = N * 1000 / scale, an integer; one request is 1000.
        per_1000_seconds = quota * 1000 // (1 if unit == "s" else 60)
        expected = math.ceil(1000 / per_1000_seconds)
        assert _nginx_map_lookup(entries, f"{quota}r/{unit}") == str(expected), quota
