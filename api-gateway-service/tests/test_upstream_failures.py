"""Upstreams that are down, slow or drop connections: problem+json answers, and no repeated POST."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from conftest import GatewayFactory
from support.assertions import assert_problem
from support.processes import free_port, wait_until
from support.raw_upstream import RawUpstream
from support.servers import Gateway, Stub


@pytest.fixture(scope="module")
def raw_upstream() -> Iterator[RawUpstream]:
    """The order upstream of the degraded gateway."""
    with RawUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def degraded_gateway(
    make_gateway: GatewayFactory, stubs: dict[str, Stub], raw_upstream: RawUpstream
) -> Gateway:
    """user: nothing listens; catalog: the stub, 1 s read timeout; order: the raw upstream."""
    return make_gateway(
        name="gateway-degraded",
        upstreams={
            "user": f"127.0.0.1:{free_port()}",
            "catalog": stubs["catalog"].address,
            "order": raw_upstream.address,
            "chat": stubs["chat"].address,
        },
        overrides={"GATEWAY_READ_TIMEOUT": "1s"},
    )


@pytest.fixture
def degraded_client(degraded_gateway: Gateway) -> Iterator[httpx.Client]:
    """A client of the degraded gateway."""
    with httpx.Client(base_url=degraded_gateway.url, timeout=10.0) as http:
        yield http


def test_with_one_replica_down_every_get_is_answered_by_another(
    make_gateway: GatewayFactory, stubs: dict[str, Stub]
) -> None:
    # Replicas side by side: one address where nothing listens, and the catalog stub.
    gateway = make_gateway(
        name="gateway-replicas",
        upstreams={
            "user": stubs["user"].address,
            "catalog": f"127.0.0.1:{free_port()},{stubs['catalog'].address}",
            "order": stubs["order"].address,
            "chat": stubs["chat"].address,
        },
    )
    with httpx.Client(base_url=gateway.url, timeout=10.0) as http:
        statuses = [http.get("/api/products").status_code for _ in range(20)]

    assert statuses == [200] * 20


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/users/me"), ("POST", "/api/auth/token")]
)
def test_upstream_down_answers_502_problem(
    degraded_client: httpx.Client, method: str, path: str
) -> None:
    response = degraded_client.request(method, path, headers={"X-Request-ID": "down-1"})

    problem = assert_problem(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        expected_status=502,
        title="Bad Gateway",
    )
    assert problem["request_id"] == "down-1"
    assert response.headers["cache-control"] == "no-store"
    assert "retry-after" not in response.headers


def test_upstream_too_slow_answers_504_problem_and_is_abandoned(
    degraded_client: httpx.Client, stubs: dict[str, Stub]
) -> None:
    key = uuid.uuid4().hex
    started = time.monotonic()
    response = degraded_client.get(f"/api/products/_slow?id={key}")
    elapsed = time.monotonic() - started

    assert_problem(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        expected_status=504,
        title="Gateway Timeout",
    )
    assert 0.9 <= elapsed < 5
    # nginx closed the upstream connection: the stub saw its client go away.
    wait_until(
        lambda: key in stubs["catalog"].disconnects(), timeout=5, message="upstream abandoned"
    )


def test_upstream_connections_are_kept_alive(
    degraded_client: httpx.Client, raw_upstream: RawUpstream
) -> None:
    before = raw_upstream.connections
    statuses = [degraded_client.get("/api/orders/keepalive/warm").status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert raw_upstream.hits("/orders/keepalive/warm") == 5
    # Five requests, at most one new connection (none if this worker already held one).
    assert raw_upstream.connections - before <= 1


def test_post_is_never_sent_twice(degraded_client: httpx.Client, raw_upstream: RawUpstream) -> None:
    # The upstream reads the whole POST, then drops the connection without an answer: it may have
    # acted on it, so nginx must not send it again (the warm-up leaves a kept-alive connection, the
    # case where nginx retries an idempotent request).
    assert degraded_client.get("/api/orders/post/warm").status_code == 200
    response = degraded_client.post("/api/orders/post/drop", json={"items": []})

    assert response.status_code == 502
    assert raw_upstream.hits("/orders/post/drop") == 1


def test_patch_is_never_sent_twice(
    degraded_client: httpx.Client, raw_upstream: RawUpstream
) -> None:
    assert degraded_client.get("/api/orders/patch/warm").status_code == 200
    response = degraded_client.patch("/api/orders/patch/drop", json={"status": "shipped"})

    assert response.status_code == 502
    assert raw_upstream.hits("/orders/patch/drop") == 1


def test_get_is_retried_once_after_a_dropped_connection(
    degraded_client: httpx.Client, raw_upstream: RawUpstream
) -> None:
    # The counterpart of the two tests above: the same failure on an idempotent request is retried,
    # so they fail for the right reason if non_idempotent ever enters proxy_next_upstream.
    assert degraded_client.get("/api/orders/get/warm").status_code == 200
    response = degraded_client.get("/api/orders/get/drop")

    assert response.status_code == 502
    assert raw_upstream.hits("/orders/get/drop") == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_request_after_the_upstream_closed_an_idle_connection_gets_the_services_answer(
    degraded_client: httpx.Client, raw_upstream: RawUpstream, method: str
) -> None:
    # The upstream answers and keeps the connection, then drops it, unread, when the next request
    # arrives on it: a service closing an idle kept-alive connection just as nginx reuses it.
    name = method.lower()
    assert degraded_client.get(f"/api/orders/{name}/stale").status_code == 200
    unread_before = raw_upstream.unread

    response = degraded_client.request(method, f"/api/orders/{name}/after-stale/warm", json={})

    assert response.status_code == 200
    assert raw_upstream.hits(f"/orders/{name}/after-stale/warm") == 1
    # The request was not sent on the stale connection at all: the next GET is, and nginx retries
    # that GET on another connection, as it may for an idempotent request.
    assert degraded_client.get(f"/api/orders/{name}/get-after-stale/warm").status_code == 200
    assert raw_upstream.unread == unread_before + 1
    assert raw_upstream.hits(f"/orders/{name}/get-after-stale/warm") == 1


def test_post_and_patch_each_open_a_new_upstream_connection(
    degraded_client: httpx.Client, raw_upstream: RawUpstream
) -> None:
    before = raw_upstream.connections
    statuses = [
        degraded_client.request(method, "/api/orders/new-connection/warm", json={}).status_code
        for method in ("POST", "PATCH", "POST")
    ]

    assert statuses == [200, 200, 200]
    assert raw_upstream.connections - before == 3
