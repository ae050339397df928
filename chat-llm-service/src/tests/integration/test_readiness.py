"""/ready tells the truth: 200 once the SDK client and the chat encoding are ready and while the
database answers, 503 once it is stopped."""

from __future__ import annotations

import httpx
from common_libs.testing.db_checks import check_ready_answers, check_ready_names_stopped_database
from common_libs.testing.findings import async_findings
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings


async def background_start_done(app: FastAPI) -> None:
    """Wait for what the lifespan started in the background: the chat encoding, the SDK client."""
    await app.state.chat_encoding
    if app.state.llm._building is not None:  # None: no LLM configured, nothing to build
        await app.state.llm._building


async def test_ready_answers_200_when_database_answers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await background_start_done(app)

    found = await async_findings(
        lambda: check_ready_answers(
            client, checks={"database": "ok", "llm_client": "ok", "tokenizer": "ok"}
        )
    )

    assert found == []


async def test_ready_answers_503_once_database_is_stopped() -> None:
    found = await async_findings(
        lambda: check_ready_names_stopped_database(
            lambda url: create_app(make_settings(database_url=url)),
            started=background_start_done,
        )
    )

    assert found == []
