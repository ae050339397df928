"""MetricsMiddleware: request latencies labelled by method, route template and status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from common_libs.health import create_health_router
from common_libs.metrics import MetricsMiddleware
from common_libs.problems import install_problem_handlers

METRIC = "http_request_duration_seconds"


def build_app(registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(MetricsMiddleware, registry=registry)
    app.include_router(
        create_health_router(service="orders", version="1", checks={}, registry=registry)
    )

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    return app


@pytest.fixture
async def client(registry: CollectorRegistry) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(build_app(registry), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def count(registry: CollectorRegistry, method: str, route: str, status: str) -> float | None:
    labels = {"method": method, "route": route, "status": status}
    return registry.get_sample_value(f"{METRIC}_count", labels)


async def test_requests_are_labelled_with_the_route_template(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/orders/1")
    await client.get("/orders/2")

    assert count(registry, "GET", "/orders/{order_id}", "200") == 2.0


async def test_metrics_endpoint_shows_the_histogram_without_raw_paths(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/orders/8c0f3b7e")

    text = (await client.get("/metrics")).text

    assert f"# TYPE {METRIC} histogram" in text
    assert (
        f'{METRIC}_count{{method="GET",route="/orders/{{order_id}}",status="200"}} 1.0'
        in text.splitlines()
    )
    assert f'{METRIC}_bucket{{le="0.005",method="GET",route="/orders/{{order_id}}"' in text
    assert "8c0f3b7e" not in text


async def test_unmatched_requests_share_one_label(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/no/such/path/1")
    await client.get("/no/such/path/2")

    assert count(registry, "GET", "<unmatched>", "404") == 2.0


async def test_unhandled_error_is_recorded_as_500(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/crash")

    assert response.status_code == 500
    assert count(registry, "GET", "/crash", "500") == 1.0


async def test_wrong_method_is_recorded_under_the_route_template(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.post("/orders/1")

    assert count(registry, "POST", "/orders/{order_id}", "405") == 1.0


async def test_durations_are_observed(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/orders/1")

    labels = {"method": "GET", "route": "/orders/{order_id}", "status": "200"}
    duration = registry.get_sample_value(f"{METRIC}_sum", labels)
    assert duration is not None
    assert duration > 0


async def test_apps_sharing_a_registry_share_one_histogram(registry: CollectorRegistry) -> None:
    for _ in range(2):
        transport = httpx.ASGITransport(build_app(registry))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/orders/1")

    assert count(registry, "GET", "/orders/{order_id}", "200") == 2.0


async def test_non_http_scopes_pass_through_unrecorded(registry: CollectorRegistry) -> None:
    seen: list[Scope] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    await MetricsMiddleware(lifespan_app, registry=registry)(scope, receive, send)

    assert seen == [scope]
    assert next(iter(registry.collect())).samples == []
