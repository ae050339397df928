"""Domain errors: each carries its HTTP status (common-libs renders them as problem+json)."""

from __future__ import annotations

from datetime import datetime

from common_libs.errors import (
    BadGateway,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)

__all__ = [
    "ConversationNotFound",
    "EmbeddingInputTooLarge",
    "LlmNotConfigured",
    "MessageTooLarge",
    "QuotaExceeded",
    "StartingUp",
    "UpstreamContextExceeded",
    "UpstreamFailed",
    "UpstreamRateLimited",
    "UpstreamTimeout",
]


class StartingUp(RuntimeError):
    """Something the service needs is still being prepared (a readiness check's failure)."""


class ConversationNotFound(NotFound):
    """The conversation does not exist or belongs to someone else."""

    def __init__(self, detail: str = "No such conversation.") -> None:
        super().__init__(detail)


class MessageTooLarge(PayloadTooLarge):
    """The user's message alone does not fit the model's context budget."""

    def __init__(self, *, tokens: int, budget: int) -> None:
        super().__init__(
            f"The message is {tokens} tokens; at most {budget} fit the model's context window "
            "next to the assistant's instructions and room for the reply.",
            extra={"tokens": tokens, "budget": budget},
        )


class EmbeddingInputTooLarge(PayloadTooLarge):
    """An input is longer than the embedding model reads."""

    def __init__(self, *, index: int, tokens: int, limit: int) -> None:
        super().__init__(
            f"Input {index} is {tokens} tokens; the embedding model reads at most {limit}.",
            extra={"index": index, "tokens": tokens, "limit": limit},
        )


class QuotaExceeded(TooManyRequests):
    """What is left of the caller's daily token quota cannot hold the request."""

    def __init__(self, *, limit: int, resets_at: datetime, retry_after: int, tokens: int) -> None:
        super().__init__(
            f"This request needs up to {tokens} tokens, more than is left of your daily quota "
            f"of {limit} tokens; it resets at 00:00 UTC.",
            retry_after=retry_after,
            extra={"limit": limit, "resets_at": resets_at.isoformat().replace("+00:00", "Z")},
        )


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
