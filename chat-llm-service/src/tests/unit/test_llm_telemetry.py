"""The GenAI span of a streamed model call: what it reports, and never the conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util.genai.handler import TelemetryHandler

from app.services.llm_integration import CompletionStream
from app.services.llm_telemetry import ModelCallTelemetry

SECRET_WORDS = "my home address is 12 Secret Lane"


class _Chunks:
    """The SDK's ``AsyncStream[object]``: parsed chunks, then the end (or an error)."""

    def __init__(self, *chunks: object, error: Exception | None = None) -> None:
        self._chunks = chunks
        self._error = error

    async def __aiter__(self) -> AsyncIterator[object]:
        for chunk in self._chunks:
            yield chunk
        if self._error is not None:
            raise self._error

    async def close(self) -> None:
        pass


def _chunk(content: str | None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}
    return {"id": "chatcmpl-7", "model": "test-model-2026", "choices": [choice], **extra}


@pytest.fixture
def spans() -> tuple[ModelCallTelemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = TelemetryHandler(tracer_provider=provider, instrumentation_scope_name=__name__)
    return ModelCallTelemetry("http://llm.test:8100/v1", handler=handler), exporter


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


async def test_a_streamed_reply_read_to_its_end_reports_model_tokens_and_finish(
    spans: tuple[ModelCallTelemetry, InMemorySpanExporter],
) -> None:
    telemetry, exporter = spans
    stream = CompletionStream(
        cast(
            Any,
            _Chunks(
                _chunk(SECRET_WORDS),
                _chunk(None, finish_reason="stop"),
                {
                    "id": "chatcmpl-7",
                    "choices": [],
                    "usage": {"prompt_tokens": 41, "completion_tokens": 9},
                },
            ),
        ),
        telemetry.chat("test-model"),
    )

    texts = [text async for text in stream.deltas()]
    await stream.aclose()

    assert texts == [SECRET_WORDS]
    span = _only(exporter)
    attributes = dict(span.attributes or {})
    assert (span.name, span.kind) == ("chat test-model", SpanKind.CLIENT)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "test-model"
    assert attributes["gen_ai.response.model"] == "test-model-2026"
    assert attributes["gen_ai.response.id"] == "chatcmpl-7"
    assert attributes["gen_ai.usage.input_tokens"] == 41
    assert attributes["gen_ai.usage.output_tokens"] == 9
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert (attributes["server.address"], attributes["server.port"]) == ("llm.test", 8100)
    assert span.status.status_code is StatusCode.UNSET
    assert not any(SECRET_WORDS in str(value) for value in attributes.values())


async def test_a_stream_that_fails_ends_its_span_as_an_error(
    spans: tuple[ModelCallTelemetry, InMemorySpanExporter],
) -> None:
    telemetry, exporter = spans
    stream = CompletionStream(
        cast(Any, _Chunks(_chunk("Hel"), error=RuntimeError("connection reset"))),
        telemetry.chat("test-model"),
    )

    with pytest.raises(RuntimeError, match="connection reset"):
        _ = [text async for text in stream.deltas()]
    await stream.aclose()

    span = _only(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert "error.type" in (span.attributes or {})


async def test_a_reply_left_unread_ends_its_span_once_when_closed(
    spans: tuple[ModelCallTelemetry, InMemorySpanExporter],
) -> None:
    telemetry, exporter = spans
    stream = CompletionStream(
        cast(Any, _Chunks(_chunk("Hello"), _chunk(" there"))), telemetry.chat("test-model")
    )
    reader = stream.deltas()
    assert await anext(reader) == "Hello"
    await reader.aclose()

    assert exporter.get_finished_spans() == ()
    await stream.aclose()
    await stream.aclose()

    span = _only(exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.usage.output_tokens" not in (span.attributes or {})
