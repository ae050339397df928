"""Domain errors: each carries its HTTP status and problem type (``urn:fleet:chat:<name>``, or
the fleet's shared one where it means exactly that); common-libs renders them as problem+json.
``PROBLEM_TYPES`` is the service's catalogue."""

from __future__ import annotations

from datetime import datetime

from common_libs.errors import (
    BadGateway,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
)
from common_libs.problem_types import (
    AUTHENTICATION_REQUIRED,
    INVALID_CURSOR,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    ProblemType,
)

__all__ = [
    "PROBLEM_TYPES",
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


def _chat(name: str, status: int, title: str, description: str) -> ProblemType:
    return ProblemType(f"urn:fleet:chat:{name}", status, title, description)


class StartingUp(RuntimeError):
    """Something the service needs is still being prepared (a readiness check's failure)."""


class ConversationNotFound(NotFound):
    """The conversation does not exist or belongs to someone else."""

    problem_type = _chat(
        "conversation-not-found",
        404,
        "Conversation Not Found",
        "No such conversation, or one of someone else (exactly like a missing one); also a "
        "conversation deleted while its reply was written.",
    )

    def __init__(self, detail: str = "No such conversation.") -> None:
        super().__init__(detail)


class MessageTooLarge(PayloadTooLarge):
    """The user's message alone does not fit the model's context budget."""

    problem_type = _chat(
        "message-too-large",
        413,
        "Message Too Large",
        "The message alone does not fit the model's context window next to the assistant's "
        "instructions and room for the reply (`tokens`, `budget`).",
    )

    def __init__(self, *, tokens: int, budget: int) -> None:
        super().__init__(
            f"The message is {tokens} tokens; at most {budget} fit the model's context window "
            "next to the assistant's instructions and room for the reply.",
            extra={"tokens": tokens, "budget": budget},
        )


class EmbeddingInputTooLarge(PayloadTooLarge):
    """An input is longer than the embedding model reads."""

    problem_type = _chat(
        "embedding-input-too-large",
        413,
        "Embedding Input Too Large",
        "An input is longer than the embedding model reads (`index`, `tokens`, `limit`).",
    )

    def __init__(self, *, index: int, tokens: int, limit: int) -> None:
        super().__init__(
            f"Input {index} is {tokens} tokens; the embedding model reads at most {limit}.",
            extra={"index": index, "tokens": tokens, "limit": limit},
        )


class QuotaExceeded(TooManyRequests):
    """What is left of the caller's daily token quota cannot hold the request."""

    problem_type = _chat(
        "quota-exceeded",
        429,
        "Quota Exceeded",
        "What is left of the caller's daily token quota cannot hold the request (`limit`, "
        "`resets_at`); `Retry-After` says when it resets (00:00 UTC).",
    )

    def __init__(self, *, limit: int, resets_at: datetime, retry_after: int, tokens: int) -> None:
        super().__init__(
            f"This request needs up to {tokens} tokens, more than is left of your daily quota "
            f"of {limit} tokens; it resets at 00:00 UTC.",
            retry_after=retry_after,
            extra={"limit": limit, "resets_at": resets_at.isoformat().replace("+00:00", "Z")},
        )


class LlmNotConfigured(ServiceUnavailable):
    """No OpenAI-compatible API is configured."""

    problem_type = _chat(
        "model-not-configured",
        503,
        "Model Not Configured",
        "No language model API is configured (the detail says how to configure one); token "
        "counting works without it.",
    )

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

    problem_type = _chat(
        "upstream-rate-limited",
        429,
        "Upstream Rate Limited",
        "The language model API is rate-limiting this service; `Retry-After` says when to try "
        "again.",
    )


class UpstreamFailed(BadGateway):
    """The language model API failed or could not be reached (the shared ``upstream-failed``:
    the model is the service behind this one)."""


class UpstreamTimeout(GatewayTimeout):
    """The language model API did not answer within the configured timeout (the shared
    ``upstream-timeout``)."""


class UpstreamContextExceeded(PayloadTooLarge):
    """The model itself says the prompt does not fit its context window."""

    problem_type = _chat(
        "upstream-context-exceeded",
        413,
        "Context Window Exceeded",
        "The language model says the request does not fit its context window.",
    )


PROBLEM_TYPES: tuple[ProblemType | type[ProblemError], ...] = (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    INVALID_CURSOR,
    ConversationNotFound,
    MessageTooLarge,
    EmbeddingInputTooLarge,
    UpstreamContextExceeded,
    QuotaExceeded,
    UpstreamRateLimited,
    UpstreamFailed,
    UpstreamTimeout,
    LlmNotConfigured,
)
"""What the app answers beyond what every service app does (``create_service_app``'s
``problem_types``): the bearer challenges (no route checks a role), a bad cursor, the language
model's failures and its own."""
