"""A streamed reply read from the chunks as the SDK parsed them (JSON objects, no models)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from app.services.llm_integration import CompletionStream, ReportedUsage
from app.services.llm_telemetry import ModelCallTelemetry

_TELEMETRY = ModelCallTelemetry("http://llm.test/v1")


class _Chunks:
    """Stands in for the SDK's ``AsyncStream[object]``: the parsed chunks, then the end."""

    def __init__(self, *chunks: object) -> None:
        self._chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[object]:
        for chunk in self._chunks:
            yield chunk

    async def close(self) -> None:
        self.closed = True


def _chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice], **extra}


async def _read(*chunks: object) -> tuple[list[str], ReportedUsage | None]:
    stream = CompletionStream(cast(Any, _Chunks(*chunks)), _TELEMETRY.chat("test-model"))
    texts = [text async for text in stream.deltas()]
    return texts, stream.usage


async def test_the_text_of_each_chunk_is_yielded_in_order_and_the_usage_kept() -> None:
    texts, usage = await _read(
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}, usage=None),
        _chunk({}, finish_reason="stop"),
        {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}},
    )

    assert texts == ["Hel", "lo"]
    assert usage == ReportedUsage(prompt_tokens=12, completion_tokens=2)


async def test_chunks_without_text_are_skipped() -> None:
    tool_call = {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f"}}]}

    texts, usage = await _read(
        _chunk(tool_call),
        _chunk({"content": None}),
        {"choices": [{"index": 0}]},
        {"choices": None},
        {"object": "chat.completion.chunk"},
    )

    assert (texts, usage) == ([], None)


async def test_a_usage_without_two_integer_counts_is_not_reported() -> None:
    for usage in ({"prompt_tokens": 3}, {"prompt_tokens": "3", "completion_tokens": 1}, "n/a"):
        _, reported = await _read(_chunk({"content": "Hi"}), {"choices": [], "usage": usage})

        assert reported is None


async def test_closing_closes_the_upstream_response() -> None:
    chunks = _Chunks(_chunk({"content": "Hi"}))
    stream = CompletionStream(cast(Any, chunks), _TELEMETRY.chat("test-model"))

    await stream.aclose()

    assert chunks.closed


async def test_tool_calls_are_put_together_from_their_fragments_by_index() -> None:
    def call(index: int, **fragment: Any) -> dict[str, Any]:
        return _chunk({"tool_calls": [{"index": index, **fragment}]})

    stream = CompletionStream(
        cast(
            Any,
            _Chunks(
                _chunk({"role": "assistant", "content": "Let me look."}),
                call(0, id="call_a", type="function", function={"name": "get_order"}),
                call(1, id="call_b", type="function", function={"name": "search_products"}),
                call(0, function={"arguments": '{"order_'}),
                call(1, function={"arguments": '{"query": "desk"}'}),
                call(0, function={"arguments": 'id": "42"}'}),
                call(2, function={"name": "nameless_id", "arguments": "{}"}),
                _chunk({"tool_calls": [{"function": {"name": "no index"}}, "not an object"]}),
                _chunk({}, finish_reason="tool_calls"),
            ),
        ),
        _TELEMETRY.chat("test-model"),
    )

    texts = [text async for text in stream.deltas()]

    assert texts == ["Let me look."]
    assert [(c.id, c.name, c.arguments) for c in stream.tool_calls] == [
        ("call_a", "get_order", '{"order_id": "42"}'),
        ("call_b", "search_products", '{"query": "desk"}'),
        ("call_2", "nameless_id", "{}"),
    ]
