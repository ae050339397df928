"""Pydantic API models of the chat routes; inputs forbid unknown fields."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_MESSAGE_CHARS = 200_000
MAX_COUNT_TEXT_CHARS = 1_000_000
MAX_EMBEDDING_INPUTS = 64
MAX_EMBEDDING_INPUT_CHARS = 100_000


def _storable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates are not UTF-8: refuse both (422).
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


Text = Annotated[str, AfterValidator(_storable_text)]

ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@+-]+$")
]
EmbeddingInput = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_EMBEDDING_INPUT_CHARS)
]
EmbeddingInputs = Annotated[
    list[EmbeddingInput], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateRequest(_Input):
    """A message for the assistant, optionally continuing one of the caller's conversations."""

    message: Text = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description=f"1..{MAX_MESSAGE_CHARS:,} characters; it must also fit the model's context "
        "window next to the assistant's instructions (else 413 `message-too-large`).",
    )
    conversation_id: uuid.UUID | None = None
    stream: bool = False


class TokenUsage(_Output):
    """Tokens one request used."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(_Output):
    """The assistant's reply."""

    role: Literal["assistant"] = "assistant"
    content: str


class GenerateResponse(_Output):
    """The reply, the conversation it belongs to, the tokens used and the model that answered."""

    conversation_id: uuid.UUID
    message: AssistantMessage
    usage: TokenUsage
    model: str


class StreamDelta(_Output):
    """The data of one ``data:`` event of a streamed reply."""

    delta: str


class StreamDone(_Output):
    """The data of the final ``event: done`` of a streamed reply."""

    conversation_id: uuid.UUID
    usage: TokenUsage
    model: str


class EmbeddingsRequest(_Input):
    """One text or a list of 1..64 texts to embed."""

    input: EmbeddingInput | EmbeddingInputs = Field(
        description=f"One text or 1..{MAX_EMBEDDING_INPUTS} texts, each of "
        f"1..{MAX_EMBEDDING_INPUT_CHARS:,} characters that must fit the embedding model (else "
        "413 `embedding-input-too-large`)."
    )

    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


class Embedding(_Output):
    """The vector of the input at ``index``."""

    index: int
    embedding: list[float]


class EmbeddingUsage(_Output):
    """Tokens an embeddings request used."""

    prompt_tokens: int


class EmbeddingsResponse(_Output):
    """One embedding per input, in input order."""

    model: str
    data: list[Embedding]
    usage: EmbeddingUsage


class CountTokensRequest(_Input):
    """A text to count, with the model whose tokenizer counts it (default: the chat model)."""

    text: Text = Field(
        max_length=MAX_COUNT_TEXT_CHARS, description=f"At most {MAX_COUNT_TEXT_CHARS:,} characters."
    )
    model: ModelName | None = None


class CountTokensResponse(_Output):
    """The exact token count under ``encoding``, the one tiktoken uses for ``model``."""

    model: str
    encoding: str
    tokens: int


class ConversationSummary(_Output):
    """A conversation without its messages."""

    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime


class ChatMessage(_Output):
    """One stored message; ``is_complete`` is false for a reply cut short (client left)."""

    id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    is_complete: bool
    created_at: datetime


class ConversationDetail(ConversationSummary):
    """A conversation with its messages, oldest first."""

    messages: list[ChatMessage]


class UsageReport(_Output):
    """The caller's tokens in the current quota period (a UTC day) and the daily limit."""

    period: date
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    limit: int
    resets_at: datetime
