"""Calling the OpenAI-compatible API through the official SDK.

One ``AsyncOpenAI`` per process on the SDK's aiohttp transport; its failures become problems in
:mod:`app.services.upstream_errors`, and no configuration at all answers 503.

The SDK is imported when the client is built, not with this module: importing it (its thousands
of typed models) is a third of the process's start-up. The lifespan builds the client in the
background (:meth:`LlmClient.start`: the import runs in a worker thread); a call made before it
is ready waits for it.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from common_libs.request_id import REQUEST_ID_HEADER, get_request_id

from app.config import Settings
from app.services.errors import LlmNotConfigured, StartingUp, UpstreamFailed
from app.services.llm_telemetry import ModelCallTelemetry, record_usage
from app.services.upstream_errors import upstream_errors

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
    from openai.types.chat.completion_create_params import (
        CompletionCreateParamsNonStreaming,
        CompletionCreateParamsStreaming,
    )
    from opentelemetry.util.genai.invocation import InferenceInvocation

__all__ = [
    "Completion",
    "CompletionStream",
    "Embeddings",
    "LlmClient",
    "PromptMessage",
    "ReportedUsage",
    "ToolCallRequest",
    "ToolChoice",
    "ToolOffer",
]

# Sent when only a base URL is configured: local servers (Ollama, vLLM) accept any key.
PLACEHOLDER_API_KEY = "no-key-configured"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
CONNECT_TIMEOUT_SECONDS = 5.0
CHAT_COMPLETIONS_PATH = "/chat/completions"


ToolChoice = Literal["auto", "none"]


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A function call the model asked for; ``arguments`` is JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message sent to the model: an assistant message may carry the tool calls it asked
    for, and a ``tool`` message answers one of them (``tool_call_id``)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReportedUsage:
    """Token usage as the upstream reported it."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole reply."""

    content: str
    usage: ReportedUsage | None
    tool_calls: tuple[ToolCallRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Vectors in input order, and the tokens the upstream counted (None when it did not)."""

    vectors: list[list[float]]
    prompt_tokens: int | None


def _request_headers() -> dict[str, str]:
    request_id = get_request_id()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


# Chat completions go through the SDK's own ``post`` (its documented way to make a request
# with a body of your own) rather than ``chat.completions.create``: the same request, the same
# retries, timeouts, errors and stream parsing, without ``create``'s per-call transformation of
# the parameters. That pass walks every message against the SDK's TypedDicts (about 2 ms of
# CPU per call, before the request leaves) and changes nothing for the plain ``role`` and
# ``content`` strings sent here. The bodies are typed with the SDK's own parameter TypedDicts,
# so mypy still checks them.
@dataclass(frozen=True, slots=True)
class ToolOffer:
    """The tools a request offers the model (OpenAI function specs) and whether it may call
    them (``none`` asks for an answer in words)."""

    specs: Sequence[ChatCompletionToolParam]
    choice: ToolChoice = "auto"


def _chat_body(
    model: str, messages: Sequence[PromptMessage], max_tokens: int, tools: ToolOffer | None
) -> CompletionCreateParamsNonStreaming:
    body: CompletionCreateParamsNonStreaming = {
        "model": model,
        "messages": _message_params(messages),
        "max_tokens": max_tokens,
    }
    if tools is not None:
        body["tools"] = tools.specs
        body["tool_choice"] = tools.choice
    return body


def _chat_stream_body(
    model: str, messages: Sequence[PromptMessage], max_tokens: int, tools: ToolOffer | None
) -> CompletionCreateParamsStreaming:
    body: CompletionCreateParamsStreaming = {
        "model": model,
        "messages": _message_params(messages),
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools is not None:
        body["tools"] = tools.specs
        body["tool_choice"] = tools.choice
    return body


def _message_params(messages: Sequence[PromptMessage]) -> list[ChatCompletionMessageParam]:
    params: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            params.append({"role": "system", "content": message.content})
        elif message.role == "user":
            params.append({"role": "user", "content": message.content})
        elif message.role == "tool":
            params.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        elif message.tool_calls:
            params.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            params.append({"role": "assistant", "content": message.content})
    return params


def _reported_usage(usage: object) -> ReportedUsage | None:
    """The usage of a chunk that carries one (its two counts are integers), else None."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if type(prompt) is not int or type(completion) is not int:
        return None
    return ReportedUsage(prompt_tokens=prompt, completion_tokens=completion)


def _chunk_deltas(chunk: object) -> list[dict[str, Any]]:
    """The ``delta`` objects of a ``chat.completion.chunk``'s choices."""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    deltas = []
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            deltas.append(delta)
    return deltas


class _CallFragments:
    """A streamed tool call, put together from its fragments (id and name first, then the
    arguments in pieces)."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, fragment: dict[str, Any]) -> None:
        if isinstance(fragment.get("id"), str):
            self.id = fragment["id"]
        function = fragment.get("function")
        if isinstance(function, dict):
            if isinstance(function.get("name"), str):
                self.name += function["name"]
            if isinstance(function.get("arguments"), str):
                self.arguments.append(function["arguments"])


class CompletionStream:
    """An open streamed reply: iterate :meth:`deltas`; ``usage`` is set by its final chunk, and
    ``tool_calls`` holds the calls the model asked for once the stream is read.

    The SDK hands each chunk over as the JSON object it parsed (``AsyncStream[object]``) rather
    than as a ``ChatCompletionChunk``: building that model (the SDK's ``construct_type``, which
    walks the chunk against its type hints) costs about 0.2 ms of CPU per chunk here, twice
    before the first piece of text. Only ``choices[].delta`` (``content``, ``tool_calls``) and
    ``usage`` are read; the SDK still turns an ``error`` in the stream into ``APIError``.
    """

    def __init__(self, stream: AsyncStream[object], call: InferenceInvocation) -> None:
        self._stream = stream
        self._call = call  # the GenAI span, ended with the stream
        self._calls: dict[int, _CallFragments] = {}
        self._finish_reasons: list[str] = []
        self._response: tuple[str | None, str | None] = (None, None)  # model, id
        self._ended = False
        self.usage: ReportedUsage | None = None

    @property
    def tool_calls(self) -> tuple[ToolCallRequest, ...]:
        """The tool calls streamed so far, by their index (an id the model left out is made)."""
        return tuple(
            ToolCallRequest(
                id=call.id or f"call_{index}", name=call.name, arguments="".join(call.arguments)
            )
            for index, call in sorted(self._calls.items())
        )

    async def deltas(self) -> AsyncIterator[str]:
        """Yield the text of the reply as it arrives; raises the mapped upstream problems."""
        call = self._call
        try:
            with upstream_errors():
                async for chunk in self._stream:
                    call.record_stream_chunk()
                    if isinstance(chunk, dict):
                        self._note(chunk)
                    for delta in _chunk_deltas(chunk):
                        self._add_tool_calls(delta.get("tool_calls"))
                        content = delta.get("content")
                        if isinstance(content, str) and content:
                            yield content
        except Exception as error:
            self._ended = True
            call.fail(error)
            raise
        self._end_call()

    def _note(self, chunk: dict[str, Any]) -> None:
        """Keep what the span reports: usage, finish reasons, the response's model and id."""
        if chunk.get("usage") is not None:
            self.usage = _reported_usage(chunk["usage"])
        if self._response == (None, None):
            model, response_id = chunk.get("model"), chunk.get("id")
            self._response = (
                model if isinstance(model, str) else None,
                response_id if isinstance(response_id, str) else None,
            )
        for choice in chunk.get("choices") or ():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            if isinstance(reason, str):
                self._finish_reasons.append(reason)

    def _end_call(self) -> None:
        if self._ended:
            return
        self._ended = True
        usage = self.usage
        record_usage(
            self._call,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            finish_reasons=self._finish_reasons,
            response_model=self._response[0],
            response_id=self._response[1],
        )
        self._call.stop()

    def _add_tool_calls(self, fragments: object) -> None:
        for fragment in fragments if isinstance(fragments, list) else ():
            index = fragment.get("index") if isinstance(fragment, dict) else None
            if type(index) is int:
                self._calls.setdefault(index, _CallFragments()).add(fragment)

    async def aclose(self) -> None:
        """Close the upstream response (and its connection, when the reply is unfinished).

        A reply left unread (the client went away, the leak guard stopped it) ends its span
        with what had arrived."""
        self._end_call()
        await self._stream.close()


_SDK_IMPORT = threading.Lock()


def _import_sdk() -> None:
    """Import the SDK, one thread at a time.

    Two threads importing the SDK at once (two clients being built, as in a test suite) can meet
    its package-internal circular imports half done and fail with ImportError; one after the
    other, the second finds it imported.
    """
    with _SDK_IMPORT:
        importlib.import_module("openai")


class LlmClient:
    """The service's handle on the OpenAI-compatible API (no client when not configured)."""

    def __init__(self, settings: Settings) -> None:
        self.deadline_seconds = settings.openai_timeout_seconds
        self._settings = settings
        self._telemetry = ModelCallTelemetry(settings.openai_base_url or OPENAI_DEFAULT_BASE_URL)
        self._client: AsyncOpenAI | None = None
        self._building: asyncio.Task[AsyncOpenAI] | None = None

    def start(self) -> None:
        """Build the SDK client in the background (the SDK is imported in a worker thread)."""
        if self._settings.is_llm_configured and self._building is None:
            self._building = asyncio.create_task(self._build(), name="openai-client")

    async def _build(self) -> AsyncOpenAI:
        await asyncio.to_thread(_import_sdk)
        import openai

        settings = self._settings
        key = settings.openai_api_key
        self._client = openai.AsyncOpenAI(
            api_key=key.get_secret_value() if key else PLACEHOLDER_API_KEY,
            base_url=settings.openai_base_url or OPENAI_DEFAULT_BASE_URL,
            timeout=openai.Timeout(
                settings.openai_timeout_seconds,
                connect=min(CONNECT_TIMEOUT_SECONDS, settings.openai_timeout_seconds),
            ),
            max_retries=settings.openai_max_retries,
            http_client=openai.DefaultAioHttpClient(),
        )
        return self._client

    async def built(self) -> None:
        """Readiness: returns once the client is built (or there is none to build), raises before.

        ``/ready`` answers 200 only when a chat turn would not have to wait for the SDK.
        """
        if self._building is None or self._client is not None:
            return
        if not self._building.done():
            raise StartingUp("the OpenAI SDK client is still being built")
        self._building.result()  # raises what the build raised

    def require(self) -> None:
        """Raise LlmNotConfigured (503 with guidance) when no API is configured."""
        if not self._settings.is_llm_configured:
            raise LlmNotConfigured

    async def _sdk(self) -> AsyncOpenAI:
        """The SDK client, once built (raises LlmNotConfigured when there is none to build)."""
        self.require()
        if self._client is not None:
            return self._client
        self.start()
        assert self._building is not None
        # Shielded: a request that gives up must not cancel the build others wait for.
        return await asyncio.shield(self._building)

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[PromptMessage],
        max_tokens: int,
        tools: ToolOffer | None = None,
    ) -> Completion:
        """Ask for a whole reply; the configured timeout bounds it, the SDK's retries included."""
        client = await self._sdk()  # first: the SDK is imported once the client is built
        from openai.types.chat import ChatCompletion

        with self._telemetry.chat(model) as call, upstream_errors():
            async with asyncio.timeout(self.deadline_seconds):
                response = await client.post(
                    CHAT_COMPLETIONS_PATH,
                    cast_to=ChatCompletion,
                    body=_chat_body(model, messages, max_tokens, tools),
                    options={"headers": _request_headers()},
                )
            usage = response.usage
            record_usage(
                call,
                input_tokens=usage.prompt_tokens if usage else None,
                output_tokens=usage.completion_tokens if usage else None,
                finish_reasons=(c.finish_reason for c in response.choices if c.finish_reason),
                response_model=response.model,
                response_id=response.id,
            )
        message = response.choices[0].message if response.choices else None
        return Completion(
            content=(message.content if message else None) or "",
            usage=ReportedUsage(usage.prompt_tokens, usage.completion_tokens) if usage else None,
            tool_calls=tuple(
                ToolCallRequest(call.id, call.function.name, call.function.arguments)
                for call in (message.tool_calls or () if message else ())
                if call.type == "function"
            ),
        )

    async def open_stream(
        self,
        *,
        model: str,
        messages: Sequence[PromptMessage],
        max_tokens: int,
        tools: ToolOffer | None = None,
    ) -> CompletionStream:
        """Start a streamed reply; returns once the upstream has accepted it (same deadline)."""
        client = await self._sdk()  # first: the SDK is imported once the client is built
        from openai import AsyncStream
        from openai.types.chat import ChatCompletion

        call = self._telemetry.chat(model)
        try:
            with upstream_errors():
                async with asyncio.timeout(self.deadline_seconds):
                    stream = await client.post(
                        CHAT_COMPLETIONS_PATH,
                        cast_to=ChatCompletion,
                        body=_chat_stream_body(model, messages, max_tokens, tools),
                        options={"headers": _request_headers()},
                        stream=True,
                        stream_cls=AsyncStream[object],  # each chunk as parsed (CompletionStream)
                    )
        except BaseException as error:
            call.fail(error)
            raise
        # The span stays open until the stream ends; what the caller does meanwhile is not
        # part of the call.
        call.suspend()
        return CompletionStream(stream, call)

    async def embed(self, *, model: str, inputs: Sequence[str]) -> Embeddings:
        """Embed ``inputs``; vectors come back in input order."""
        client = await self._sdk()
        with upstream_errors():
            async with asyncio.timeout(self.deadline_seconds):
                response = await client.embeddings.create(
                    model=model,
                    input=list(inputs),
                    encoding_format="float",
                    extra_headers=_request_headers(),
                )
        ordered = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in ordered] != list(range(len(inputs))):
            raise UpstreamFailed("The language model API did not embed every input.")
        usage = response.usage
        return Embeddings(
            vectors=[list(item.embedding) for item in ordered],
            prompt_tokens=usage.prompt_tokens if usage else None,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (once it is built, when it is being built)."""
        if self._building is not None:
            await asyncio.gather(self._building, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
