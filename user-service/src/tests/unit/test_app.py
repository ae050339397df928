"""The app answers liveness and errors in the fleet's conventions without a database."""

from __future__ import annotations

from importlib.metadata import version

import httpx


async def test_health_reports_service_and_version(offline_client: httpx.AsyncClient) -> None:
    response = await offline_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "service": "user-service",
        "version": version("user-service"),
    }


async def test_unknown_path_answers_problem_json_with_request_id(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.get("/no-such-path", headers={"X-Request-ID": "abc-123"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


async def test_metrics_are_prometheus_text(offline_client: httpx.AsyncClient) -> None:
    await offline_client.get("/health")

    response = await offline_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'http_request_duration_seconds_count{method="GET",route="/health"' in response.text


async def test_provider_state_endpoint_is_absent_unless_enabled(
    offline_client: httpx.AsyncClient,
) -> None:
    response = await offline_client.post("/_pact/provider-states", json={"state": ""})

    assert response.status_code == 404
