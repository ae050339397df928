"""The service runs as a real uvicorn process configured only through its environment."""

from __future__ import annotations

from importlib.metadata import version

import httpx

from tests.integration.conftest import RunningService


def test_uvicorn_process_serves_health_and_ready(service: RunningService) -> None:
    health = httpx.get(service.url + "/health", headers={"X-Request-ID": "proc-check-1"})
    ready = httpx.get(service.url + "/ready")

    assert health.json()["version"] == version("chat-llm-service")
    assert health.headers["x-request-id"] == "proc-check-1"
    assert ready.status_code == 200
    assert '"request_id": "proc-check-1"' in service.output()
