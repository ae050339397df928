"""The app keeps the fleet's conventions without a database, a failed start leaks nothing, and
the slow parts of the start happen in the background."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from common_libs.testing.app_checks import fleet_app_test

from app import main as main_module
from app.services.errors import LlmNotConfigured, StartingUp
from app.services.llm_integration import LlmClient
from tests.conftest import make_settings

test_app_keeps_fleet_convention = fleet_app_test(
    main_module, service="chat-llm-service", failing_start_step="start_user_erasure"
)


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
