"""The quota reserves each model call's own size before the call, and settles it after.

A request is admitted only when the day's used plus held tokens plus its own size (its prompt
counted with tiktoken plus its completion bound; an embedding request's inputs) fit the limit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common_libs.testing import LlmServer, Reply, TestTokenIssuer, ToolCall, ToolCalls, eventually
from common_libs.testing.app_checks import asgi_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.utils.token_counter import load_encoding
from tests.integration.conftest import chat_settings, running_app
from tests.support.servers import CatalogStub, failing, parse_events

# About 600 tokens of cl100k_base (the embedding model's encoding): fits 1,000 once, not twice.
BIG_INPUT = "word " * 600
REPLY_ALLOWANCE = 256  # chat_settings' max_output_tokens


@asynccontextmanager
async def _observer(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _quota_row(engine: AsyncEngine, user_id: str) -> tuple[int, int]:
    """The user's (total_tokens, reserved_tokens) today; (0, 0) without a row."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT total_tokens, reserved_tokens FROM daily_usage "
                    "WHERE user_id = :u AND day = (now() AT TIME ZONE 'UTC')::date"
                ),
                {"u": user_id},
            )
        ).one_or_none()
    return (int(row.total_tokens), int(row.reserved_tokens)) if row else (0, 0)


def _prompt_tokens(body: dict[str, object]) -> int:
    """OpenAI's count of a chat request without tools (3 per message + role + content, 3 to
    prime the reply), with the chat model's encoding."""
    encoding = load_encoding("o200k_base")
    messages = body["messages"]
    assert isinstance(messages, list)
    return 3 + sum(
        3 + len(encoding.encode(message["role"])) + len(encoding.encode(message["content"]))
        for message in messages
    )


async def test_embeddings_bigger_than_the_remaining_quota_are_refused_without_calling_the_model(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=300)
    user_id = str(uuid.uuid4())
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        response = await http.post(
            "/chat/get_embeddings",
            json={"input": BIG_INPUT},
            headers=issuer.headers(subject=user_id),
        )
        row = await _quota_row(observer, user_id)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 0 < int(response.headers["retry-after"]) <= 86_400
    assert response.json()["limit"] == 300
    assert fake_llm.requests("/v1/embeddings") == []
    assert row == (0, 0)


async def test_generation_whose_prompt_and_reply_allowance_exceed_the_remainder_is_refused(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=2000)
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id)
    fake_llm.enqueue(Reply(usage={"prompt_tokens": 1700, "completion_tokens": 0}))
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        first = await http.post("/chat/generate_response", json={"message": "Hi"}, headers=headers)
        # 300 tokens remain: less than this turn's prompt plus its 256-token reply allowance.
        second = await http.post(
            "/chat/generate_response", json={"message": "Hi again"}, headers=headers
        )
        streamed = await http.post(
            "/chat/generate_response",
            json={"message": "Hi again", "stream": True},
            headers=headers,
        )
        row = await _quota_row(observer, user_id)

    assert first.status_code == 200
    assert (second.status_code, streamed.status_code) == (429, 429)
    assert second.json()["limit"] == 2000
    assert len(fake_llm.chat_requests()) == 1
    assert row == (1700, 0)


async def test_the_hold_is_the_requests_own_size_and_settles_to_the_reported_usage(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, max_tool_rounds=0)
    user_id = str(uuid.uuid4())
    fake_llm.enqueue(
        Reply(gate="hold", gate_after=1, usage={"prompt_tokens": 7, "completion_tokens": 3})
    )
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        turn = asyncio.create_task(
            http.post(
                "/chat/generate_response",
                json={"message": "Is the walnut desk in stock?", "stream": True},
                headers=issuer.headers(subject=user_id),
            )
        )
        await eventually(lambda: fake_llm.streams() != [], message="the model call started")
        held = await _quota_row(observer, user_id)
        fake_llm.release("hold")
        response = await turn
        settled = await _quota_row(observer, user_id)

    [sent] = fake_llm.chat_requests()
    assert sent["max_tokens"] == REPLY_ALLOWANCE
    assert held == (0, _prompt_tokens(sent) + REPLY_ALLOWANCE)
    assert response.status_code == 200
    assert settled == (10, 0)


async def test_a_tool_round_that_would_pass_the_quota_is_refused_before_its_model_call(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=3000)
    user_id = str(uuid.uuid4())
    search = ToolCall("search_products", json.dumps({"query": "desk"}), id="call_s")
    # The first call fits; it reports 2,810 tokens, so the second call's prompt and reply
    # allowance cannot fit the 190 left.
    used = {"prompt_tokens": 2800, "completion_tokens": 10}
    fake_llm.enqueue(ToolCalls(calls=[search], usage=used), Reply())
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        response = await http.post(
            "/chat/generate_response",
            json={"message": "Any desk?"},
            headers=issuer.headers(subject=user_id),
        )
        row = await _quota_row(observer, user_id)

    assert response.status_code == 429
    assert response.json()["limit"] == 3000
    assert len(fake_llm.chat_requests()) == 1
    assert row == (2810, 0)


async def test_a_streamed_tool_round_that_would_pass_the_quota_ends_with_a_quota_error(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=3000)
    user_id = str(uuid.uuid4())
    search = ToolCall("search_products", json.dumps({"query": "desk"}), id="call_s")
    used = {"prompt_tokens": 2800, "completion_tokens": 10}
    fake_llm.enqueue(ToolCalls(calls=[search], usage=used), Reply())
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        response = await http.post(
            "/chat/generate_response",
            json={"message": "Any desk?", "stream": True},
            headers=issuer.headers(subject=user_id),
        )
        row = await _quota_row(observer, user_id)

    assert response.status_code == 200
    name, data = parse_events(response.text)[-1]
    assert name == "error"
    problem = json.loads(data)
    assert (problem["status"], problem["limit"]) == (429, 3000)
    assert len(fake_llm.chat_requests()) == 1
    assert row == (2810, 0)


async def test_a_failed_tool_round_keeps_the_usage_of_the_rounds_before_it(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog)
    user_id = str(uuid.uuid4())
    search = ToolCall("search_products", json.dumps({"query": "desk"}), id="call_s")
    used = {"prompt_tokens": 120, "completion_tokens": 8}
    fake_llm.enqueue(ToolCalls(calls=[search], usage=used), *[failing(500)] * 3)
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        response = await http.post(
            "/chat/generate_response",
            json={"message": "Any desk?"},
            headers=issuer.headers(subject=user_id),
        )
        row = await _quota_row(observer, user_id)

    assert response.status_code == 502
    assert row == (128, 0)


async def test_a_failed_call_leaves_the_usage_as_it_was(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=1000)
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id)
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        before = await http.post("/chat/get_embeddings", json={"input": "hello"}, headers=headers)
        fake_llm.enqueue(*[failing(500)] * 3, endpoint="embeddings")
        failed = await http.post("/chat/get_embeddings", json={"input": BIG_INPUT}, headers=headers)
        row = await _quota_row(observer, user_id)
        # Nothing of the failed call is held: the same request fits again.
        retried = await http.post(
            "/chat/get_embeddings", json={"input": BIG_INPUT}, headers=headers
        )

    assert (before.status_code, failed.status_code, retried.status_code) == (200, 502, 200)
    assert row == (1, 0)


async def _waiting_for_a_row_lock(engine: AsyncEngine, count: int) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE '%daily_usage%'"
            )
        )
    return waiting == count


async def test_two_requests_that_fit_alone_but_not_together_do_not_both_pass(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, daily_token_quota=1001)
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id)
    async with (
        running_app(settings, issuer) as application,
        asgi_client(application) as http,
        _observer(database_url) as observer,
    ):
        first = await http.post("/chat/get_embeddings", json={"input": "hello"}, headers=headers)
        async with observer.connect() as blocker:
            await blocker.begin()
            # Both reservations queue behind this lock, so they meet the row at the same time.
            await blocker.execute(
                text("SELECT 1 FROM daily_usage WHERE user_id = :u FOR UPDATE"), {"u": user_id}
            )
            both = asyncio.gather(
                *(
                    http.post("/chat/get_embeddings", json={"input": BIG_INPUT}, headers=headers)
                    for _ in range(2)
                )
            )
            await eventually(
                lambda: _waiting_for_a_row_lock(observer, 2), message="both reservations waiting"
            )
            await blocker.rollback()
        responses = await both
        row = await _quota_row(observer, user_id)

    assert first.status_code == 200
    assert sorted(response.status_code for response in responses) == [200, 429]
    assert len(fake_llm.requests("/v1/embeddings")) == 2
    assert row[1] == 0
    assert 600 < row[0] <= 1001
