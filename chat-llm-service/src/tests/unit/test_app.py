"""The app answers liveness and errors in the fleet's conventions without a database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from importlib.metadata import version

import httpx
import pytest

from app import main as main_module
from app.services.llm_integration import LlmClient, LlmNotConfigured, StartingUp
from tests.conftest import make_settings


async def test_health_reports_service_and_version(offline_client: httpx.AsyncClient) -> None:
    response = await offline_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "service": "chat-llm-service",
        "version": version("chat-llm-service"),
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


def test_importing_the_app_does_not_import_the_openai_sdk() -> None:
    # A third of the start-up: the SDK is imported (in a worker thread) when the client is built.
    script = "import sys, app.main\nprint('openai' in sys.modules)\n"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False"]


async def test_the_llm_client_is_built_in_the_background_and_awaited_by_a_call() -> None:
    llm = LlmClient(make_settings(openai_base_url="http://127.0.0.1:9/v1"))
    llm.start()
    with pytest.raises(StartingUp):  # the build has not had a turn of the loop yet
        await llm.built()
    client = await llm._sdk()  # waits for the build started above
    try:
        await llm.built()  # ready now
        assert str(client.base_url) == "http://127.0.0.1:9/v1/"
        assert await llm._sdk() is client
    finally:
        await llm.aclose()


async def test_readiness_waits_for_a_background_load() -> None:
    release = asyncio.Event()
    load = asyncio.create_task(release.wait())
    with pytest.raises(StartingUp):
        await main_module._loaded(load)  # type: ignore[arg-type]

    release.set()
    await load

    await main_module._loaded(load)  # type: ignore[arg-type]


async def test_no_llm_configured_builds_nothing_and_answers_503() -> None:
    llm = LlmClient(make_settings())
    llm.start()
    await llm.built()  # nothing to build: ready

    with pytest.raises(LlmNotConfigured):
        await llm.embed(model="text-embedding-3-small", inputs=["hi"])
    await llm.aclose()
