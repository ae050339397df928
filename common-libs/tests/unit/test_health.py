"""Operational endpoints: liveness, readiness with named checks, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from common_libs.health import ReadinessCheck, create_health_router
from common_libs.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers


async def answers() -> None:
    return None


async def refuses() -> None:
    raise ConnectionRefusedError("connect to 10.0.0.5:5432 refused")


async def hangs() -> None:
    await asyncio.Event().wait()


def build_app(checks: Mapping[str, ReadinessCheck], registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(
        create_health_router(
            service="orders",
            version="1.2.3",
            checks=checks,
            check_timeout=0.1,
            registry=registry,
        )
    )
    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


@pytest.fixture
async def healthy(registry: CollectorRegistry) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(build_app({"database": answers, "catalog": answers}, registry)) as client:
        yield client


async def test_health_names_service_and_version(healthy: httpx.AsyncClient) -> None:
    response = await healthy.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "orders", "version": "1.2.3"}


async def test_ready_answers_200_when_every_check_passes(healthy: httpx.AsyncClient) -> None:
    response = await healthy.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "service": "orders",
        "checks": {"database": "ok", "catalog": "ok"},
    }


async def test_ready_without_checks_is_ready(registry: CollectorRegistry) -> None:
    async with client_for(build_app({}, registry)) as client:
        response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {}


async def test_failing_check_answers_503_problem_naming_it(registry: CollectorRegistry) -> None:
    async with client_for(build_app({"database": refuses, "catalog": answers}, registry)) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["detail"] == "Not ready: database check failed."
    assert body["checks"] == {"database": "failed (ConnectionRefusedError)", "catalog": "ok"}
    assert "10.0.0.5" not in response.text


async def test_check_that_does_not_answer_in_time_fails(registry: CollectorRegistry) -> None:
    async with client_for(build_app({"database": answers, "catalog": hangs}, registry)) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["type"] == "urn:fleet:common:service-unavailable"
    assert response.json()["detail"] == "Not ready: catalog check failed."
    assert response.json()["checks"]["catalog"] == "no answer within 0.1 s"


async def test_every_failing_check_is_named(registry: CollectorRegistry) -> None:
    async with client_for(build_app({"database": refuses, "catalog": hangs}, registry)) as client:
        response = await client.get("/ready")

    assert response.json()["detail"] == "Not ready: database, catalog check failed."


async def test_checks_run_concurrently(registry: CollectorRegistry) -> None:
    # Each check answers only once the other has started: run one after the other, both time out.
    first_started, second_started = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        first_started.set()
        await second_started.wait()

    async def second() -> None:
        second_started.set()
        await first_started.wait()

    async with client_for(build_app({"first": first, "second": second}, registry)) as client:
        response = await client.get("/ready")

    assert response.status_code == 200


async def test_failing_check_is_logged_with_its_error(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(build_app({"database": refuses}, registry)) as client:
        with caplog.at_level(logging.WARNING, logger="common_libs.health"):
            await client.get("/ready")

    assert [record.getMessage() for record in caplog.records] == [
        "readiness check database failed: connect to 10.0.0.5:5432 refused"
    ]


async def test_metrics_serves_the_registry_in_prometheus_text(
    healthy: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    orders = Counter("orders_placed", "Orders placed.", registry=registry)
    orders.inc(3)

    response = await healthy.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "orders_placed_total 3.0" in response.text.splitlines()


async def test_operational_endpoints_stay_out_of_the_openapi_schema(
    registry: CollectorRegistry,
) -> None:
    paths = build_app({}, registry).openapi()["paths"]

    assert not {"/health", "/ready", "/metrics"} & set(paths)
