"""The per-user daily token quota: recorded per request, enforced atomically, reported."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from common_libs.testing import LlmServer, Reply, TestTokenIssuer, eventually
from common_libs.testing.app_checks import asgi_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.integration.conftest import chat_settings, running_app
from tests.support.servers import CatalogStub, failing

QUOTA = 2000


@pytest.fixture
async def quota_client(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with a daily quota of 2,000 tokens."""
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=QUOTA)
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        yield http


async def test_usage_reports_the_tokens_the_upstream_counted(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 30}
    fake_llm.enqueue(Reply(usage=usage), Reply(usage=usage))
    for _ in range(2):
        await client.post("/chat/generate_response", json={"message": "Hi"}, headers=user)

    report = (await client.get("/chat/usage", headers=user)).json()

    assert report["prompt_tokens"] == 240
    assert report["completion_tokens"] == 60
    assert report["total_tokens"] == 300
    assert report["limit"] == 10_000_000
    assert report["resets_at"].endswith("T00:00:00Z")


async def test_request_after_the_quota_is_used_up_answers_429(
    quota_client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(Reply(usage={"prompt_tokens": 1900, "completion_tokens": 60}))
    first = await quota_client.post("/chat/generate_response", json={"message": "Hi"}, headers=user)

    second = await quota_client.post(
        "/chat/generate_response", json={"message": "Again"}, headers=user
    )

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["type"] == "urn:fleet:chat:quota-exceeded"
    assert second.json()["title"] == "Quota Exceeded"
    assert 0 < int(second.headers["retry-after"]) <= 86_400
    assert second.json()["limit"] == QUOTA
    assert len(fake_llm.chat_requests()) == 1
    report = (await quota_client.get("/chat/usage", headers=user)).json()
    assert (report["total_tokens"], report["limit"]) == (1960, QUOTA)


async def test_concurrent_requests_cannot_all_slip_under_the_quota(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    # Each turn holds its prompt plus 2,000 tokens for the reply: one fits 3,000, two do not.
    settings = chat_settings(
        database_url, fake_llm, catalog, daily_token_quota=3000, max_output_tokens=2000
    )
    headers = issuer.headers()
    # The turn whose hold fits waits at the model until the others have their answers: had it
    # finished first, its hold would have settled to its few tokens, and a turn that started
    # later would fit beside it (a slow start under load once made that a second 200).
    fake_llm.enqueue(Reply(gate="others-answered", gate_after=1))
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        turns = [
            asyncio.create_task(
                http.post(
                    "/chat/generate_response",
                    json={"message": f"Hi {n}", "stream": True},
                    headers=headers,
                )
            )
            for n in range(5)
        ]
        await eventually(
            lambda: sum(turn.done() for turn in turns) == 4, message="four turns answered"
        )
        fake_llm.release("others-answered")
        responses = await asyncio.gather(*turns)

    assert sorted(response.status_code for response in responses) == [200, 429, 429, 429, 429]


async def test_failed_call_gives_its_reservation_back(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    # One turn's hold (its prompt plus 2,000 tokens for the reply) fits 3,000; two do not.
    settings = chat_settings(
        database_url, fake_llm, catalog, daily_token_quota=3000, max_output_tokens=2000
    )
    headers = issuer.headers()
    fake_llm.enqueue(*[failing(500)] * 3)
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        failed = await http.post("/chat/generate_response", json={"message": "Hi"}, headers=headers)
        retried = await http.post(
            "/chat/generate_response", json={"message": "Hi"}, headers=headers
        )

    assert failed.status_code == 502
    assert retried.status_code == 200


async def _held(engine: AsyncEngine, user_id: str) -> int:
    async with engine.connect() as connection:
        held = await connection.scalar(
            text("SELECT reserved_tokens FROM daily_usage WHERE user_id = :u"), {"u": user_id}
        )
    return int(held or 0)


async def _search_waiting(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE '%catalog_products%'"
            )
        )
    return waiting == 1


async def test_a_turn_cancelled_before_its_model_call_holds_nothing(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog)
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id)
    observer = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with running_app(settings, issuer) as application, asgi_client(application) as http:
            async with observer.connect() as blocker:
                await blocker.begin()
                # The search waits behind this lock; the hold is taken only once the prompt,
                # grounding included, is known and counted.
                await blocker.execute(text("LOCK TABLE catalog_products IN ACCESS EXCLUSIVE MODE"))
                turn = asyncio.create_task(
                    http.post(
                        "/chat/generate_response", json={"message": "A lamp?"}, headers=headers
                    )
                )
                await eventually(lambda: _search_waiting(observer), message="the search waiting")
                held = await _held(observer, user_id)
                turn.cancel()  # the request goes away while the search waits
                with pytest.raises(asyncio.CancelledError):
                    await turn
                await blocker.rollback()
            after = await _held(observer, user_id)
    finally:
        await observer.dispose()

    assert (held, after) == (0, 0)
    assert fake_llm.chat_requests() == []
