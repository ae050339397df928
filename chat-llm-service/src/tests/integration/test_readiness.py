"""/ready tells the truth: 200 once the SDK client and the chat encoding are ready and while the
database answers, 503 once it is stopped."""

from __future__ import annotations

from common_libs.testing.db_checks import readiness_test
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings


async def background_start_done(app: FastAPI) -> None:
    """Wait for what the lifespan started in the background: the chat encoding, the SDK client."""
    await app.state.chat_encoding
    if app.state.llm._building is not None:  # None: no LLM configured, nothing to build
        await app.state.llm._building


test_ready_tells_whether_the_database_answers = readiness_test(
    lambda url: create_app(make_settings(database_url=url)),
    checks={"database": "ok", "llm_client": "ok", "tokenizer": "ok"},
    started=background_start_done,
)
