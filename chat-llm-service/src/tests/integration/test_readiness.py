"""/ready tells the truth: 200 once the SDK client and the chat encoding are ready and while the
database answers, 503 once it is stopped."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
from common_libs.testing import create_database, start_postgres
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

    response = await client.get("/ready")

    assert response.status_code == 200

    assert response.json()["checks"] == {"database": "ok", "llm_client": "ok", "tokenizer": "ok"}


async def test_ready_answers_503_once_database_is_stopped() -> None:
    with ExitStack() as stack:
        server = stack.enter_context(start_postgres())
        app = create_app(make_settings(database_url=create_database(server, "ready_probe")))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                await background_start_done(app)
                assert (await client.get("/ready")).status_code == 200

                stack.close()  # stops this test's own PostgreSQL server
                response = await client.get("/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["database"].startswith("failed")
    assert "database" in body["detail"]
