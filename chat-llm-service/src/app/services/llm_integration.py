"""Calling the OpenAI-compatible API through the official SDK, and mapping its failures.

One ``AsyncOpenAI`` per process (made in the lifespan) on the SDK's aiohttp transport. Upstream
failures become problems a client can act on, never a 500: 429 stays 429 with ``Retry-After``,
5xx and connection errors become 502, timeouts 504, and no configuration at all 503.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import aiohttp
import openai
from common_libs.errors import (
    BadGateway,
    GatewayTimeout,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)
from common_libs.request_id import REQUEST_ID_HEADER, get_request_id
from openai import AsyncOpenAI, DefaultAioHttpClient
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from app.config import Settings

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

    def __init__(self, stream: openai.AsyncStream[ChatCompletionChunk]) -> None:
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


class LlmClient:
    """The service's handle on the OpenAI-compatible API (None inside when not configured)."""

    def __init__(self, settings: Settings) -> None:
        self.deadline_seconds = settings.openai_timeout_seconds
        self._client: AsyncOpenAI | None = None
        if settings.is_llm_configured:
            key = settings.openai_api_key
            self._client = AsyncOpenAI(
                api_key=key.get_secret_value() if key else PLACEHOLDER_API_KEY,
                base_url=settings.openai_base_url or OPENAI_DEFAULT_BASE_URL,
                timeout=openai.Timeout(
                    settings.openai_timeout_seconds,
                    connect=min(CONNECT_TIMEOUT_SECONDS, settings.openai_timeout_seconds),
                ),
                max_retries=settings.openai_max_retries,
                http_client=DefaultAioHttpClient(),
            )

    def require(self) -> AsyncOpenAI:
        """The SDK client, or LlmNotConfigured (503 with guidance)."""
        if self._client is None:
            raise LlmNotConfigured
        return self._client

    async def complete(
        self, *, model: str, messages: Sequence[PromptMessage], max_tokens: int
    ) -> Completion:
        """Ask for a whole reply; the configured timeout bounds it, the SDK's retries included."""
        client = self.require()
        with upstream_errors():
            async with asyncio.timeout(self.deadline_seconds):
                response = await client.chat.completions.create(
                    model=model,
                    messages=_message_params(messages),
                    max_tokens=max_tokens,
                    extra_headers=_request_headers(),
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
        client = self.require()
        with upstream_errors():
            async with asyncio.timeout(self.deadline_seconds):
                stream = await client.chat.completions.create(
                    model=model,
                    messages=_message_params(messages),
                    max_tokens=max_tokens,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers=_request_headers(),
                )
        return CompletionStream(stream)

    async def embed(self, *, model: str, inputs: Sequence[str]) -> Embeddings:
        """Embed ``inputs``; vectors come back in input order."""
        client = self.require()
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
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.close()
