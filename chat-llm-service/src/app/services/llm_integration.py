"""Calling the OpenAI-compatible API through the official SDK, and mapping its failures.

One ``AsyncOpenAI`` per process on the SDK's aiohttp transport. Upstream failures become problems
a client can act on, never a 500: 429 stays 429 with ``Retry-After``, 5xx and connection errors
become 502, timeouts 504, and no configuration at all 503.

The SDK is imported when the client is built, not with this module: importing it (its thousands
of typed models) is a third of the process's start-up. The lifespan builds the client in the
background (:meth:`LlmClient.start`: the import runs in a worker thread); a call made before it
is ready waits for it.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import aiohttp
from common_libs.errors import (
    BadGateway,
    GatewayTimeout,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)
from common_libs.request_id import REQUEST_ID_HEADER, get_request_id

from app.config import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
    from openai.types.chat.completion_create_params import (
        CompletionCreateParamsNonStreaming,
        CompletionCreateParamsStreaming,
    )

__all__ = [
    "Completion",
    "CompletionStream",
    "Embeddings",
    "LlmClient",
    "LlmNotConfigured",
    "PromptMessage",
    "ReportedUsage",
    "UpstreamFailed",
    "UpstreamRateLimited",
    "UpstreamTimeout",
]

# Sent when only a base URL is configured: local servers (Ollama, vLLM) accept any key.
PLACEHOLDER_API_KEY = "no-key-configured"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_RETRY_AFTER_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 5.0
CHAT_COMPLETIONS_PATH = "/chat/completions"


class StartingUp(RuntimeError):
    """Something the service needs is still being prepared (a readiness check's failure)."""


class LlmNotConfigured(ServiceUnavailable):
    """No OpenAI-compatible API is configured."""

    def __init__(self) -> None:
        super().__init__(
            "No language model API is configured. Set OPENAI_API_KEY to an OpenAI API key, "
            "or OPENAI_BASE_URL to any OpenAI-compatible server (for example a local Ollama "
            "at http://127.0.0.1:11434/v1 or vLLM at http://127.0.0.1:8000/v1; a key is then "
            "optional), and choose models with CHAT_MODEL and EMBEDDING_MODEL. "
            "Token counting works without it.",
            retry_after=60,
        )


class UpstreamRateLimited(TooManyRequests):
    """The language model API keeps answering 429."""


class UpstreamFailed(BadGateway):
    """The language model API failed or could not be reached."""


class UpstreamTimeout(GatewayTimeout):
    """The language model API did not answer within the configured timeout."""


class UpstreamContextExceeded(PayloadTooLarge):
    """The model itself says the prompt does not fit its context window."""


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message sent to the model."""

    role: Literal["system", "user", "assistant"]
    content: str


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


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Vectors in input order, and the tokens the upstream counted (None when it did not)."""

    vectors: list[list[float]]
    prompt_tokens: int | None


def _retry_after(headers: object) -> int:
    get = getattr(headers, "get", None)
    if get is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    for name, divisor in (("retry-after", 1.0), ("retry-after-ms", 1000.0)):
        try:
            seconds = float(get(name)) / divisor
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return max(1, math.ceil(seconds))
    return DEFAULT_RETRY_AFTER_SECONDS


def _is_timeout(exc: BaseException) -> bool:
    """Tell a real timeout from a refused connection.

    The SDK's aiohttp transport reports every connection failure as a connect *timeout*; the
    exception chain still holds what really happened.
    """
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        if isinstance(seen, aiohttp.ClientConnectorError | ConnectionError):
            return False
        seen = seen.__cause__ or seen.__context__
    return True


@contextmanager
def upstream_errors() -> Iterator[None]:
    """Turn the SDK's exceptions into the problems this service answers."""
    import openai  # imported by now: only a client that exists makes calls

    try:
        yield
    except openai.RateLimitError as exc:
        raise UpstreamRateLimited(
            "The language model API is rate-limiting this service; try again later.",
            retry_after=_retry_after(exc.response.headers),
        ) from exc
    except openai.APIStatusError as exc:
        if exc.code == "context_length_exceeded":
            raise UpstreamContextExceeded(
                "The conversation does not fit the model's context window."
            ) from exc
        raise UpstreamFailed(f"The language model API answered {exc.status_code}.") from exc
    except openai.APITimeoutError as exc:
        if _is_timeout(exc):
            raise UpstreamTimeout("The language model API did not answer in time.") from exc
        raise UpstreamFailed("The language model API cannot be reached.") from exc
    except openai.APIConnectionError as exc:
        raise UpstreamFailed("The language model API cannot be reached.") from exc
    except openai.APIError as exc:
        raise UpstreamFailed("The language model API sent an invalid answer.") from exc
    except TimeoutError as exc:
        raise UpstreamTimeout("The language model API did not answer in time.") from exc


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
def _chat_body(
    model: str, messages: Sequence[PromptMessage], max_tokens: int
) -> CompletionCreateParamsNonStreaming:
    return {"model": model, "messages": _message_params(messages), "max_tokens": max_tokens}


def _chat_stream_body(
    model: str, messages: Sequence[PromptMessage], max_tokens: int
) -> CompletionCreateParamsStreaming:
    return {
        "model": model,
        "messages": _message_params(messages),
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _message_params(messages: Sequence[PromptMessage]) -> list[ChatCompletionMessageParam]:
    params: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            params.append({"role": "system", "content": message.content})
        elif message.role == "user":
            params.append({"role": "user", "content": message.content})
        else:
            params.append({"role": "assistant", "content": message.content})
    return params


class CompletionStream:
    """An open streamed reply: iterate :meth:`deltas`; ``usage`` is set by its final chunk."""

    def __init__(self, stream: AsyncStream[ChatCompletionChunk]) -> None:
        self._stream = stream
        self.usage: ReportedUsage | None = None

    async def deltas(self) -> AsyncIterator[str]:
        """Yield the text of the reply as it arrives; raises the mapped upstream problems."""
        with upstream_errors():
            async for chunk in self._stream:
                if chunk.usage is not None:
                    self.usage = ReportedUsage(
                        prompt_tokens=chunk.usage.prompt_tokens,
                        completion_tokens=chunk.usage.completion_tokens,
                    )
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content

    async def aclose(self) -> None:
        """Close the upstream response (and its connection, when the reply is unfinished)."""
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
        self, *, model: str, messages: Sequence[PromptMessage], max_tokens: int
    ) -> Completion:
        """Ask for a whole reply; the configured timeout bounds it, the SDK's retries included."""
        client = await self._sdk()  # first: the SDK is imported once the client is built
        from openai.types.chat import ChatCompletion

        with upstream_errors():
            async with asyncio.timeout(self.deadline_seconds):
                response = await client.post(
                    CHAT_COMPLETIONS_PATH,
                    cast_to=ChatCompletion,
                    body=_chat_body(model, messages, max_tokens),
                    options={"headers": _request_headers()},
                )
        content = response.choices[0].message.content if response.choices else None
        usage = response.usage
        return Completion(
            content=content or "",
            usage=ReportedUsage(usage.prompt_tokens, usage.completion_tokens) if usage else None,
        )

    async def open_stream(
        self, *, model: str, messages: Sequence[PromptMessage], max_tokens: int
    ) -> CompletionStream:
        """Start a streamed reply; returns once the upstream has accepted it (same deadline)."""
        client = await self._sdk()  # first: the SDK is imported once the client is built
        from openai import AsyncStream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        with upstream_errors():
            async with asyncio.timeout(self.deadline_seconds):
                stream = await client.post(
                    CHAT_COMPLETIONS_PATH,
                    cast_to=ChatCompletion,
                    body=_chat_stream_body(model, messages, max_tokens),
                    options={"headers": _request_headers()},
                    stream=True,
                    stream_cls=AsyncStream[ChatCompletionChunk],
                )
        return CompletionStream(stream)

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
