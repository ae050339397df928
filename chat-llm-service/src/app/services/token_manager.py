"""Token counting and embeddings: the two calls that need no conversation."""

from __future__ import annotations

from app.config import Settings
from app.models.chat_models import (
    CountTokensResponse,
    Embedding,
    EmbeddingsResponse,
    EmbeddingUsage,
)
from app.services import quota_manager
from app.services.context import ChatServices
from app.services.errors import EmbeddingInputTooLarge
from app.utils.token_counter import count_text_async, count_texts_async, encoding_for_model_async

__all__ = [
    "EMBEDDING_MAX_INPUT_TOKENS",
    "count_tokens",
    "create_embeddings",
]

# OpenAI's embedding models read at most this many tokens per input.
EMBEDDING_MAX_INPUT_TOKENS = 8191


async def count_tokens(*, settings: Settings, text: str, model: str | None) -> CountTokensResponse:
    """Count ``text`` exactly as tiktoken does for ``model`` (default: the chat model)."""
    encoding = await encoding_for_model_async(
        model or settings.chat_model, fallback=settings.fallback_encoding
    )
    tokens = await count_text_async(encoding.encoding, text)
    return CountTokensResponse(model=encoding.model, encoding=encoding.name, tokens=tokens)


async def create_embeddings(
    *, services: ChatServices, user_id: str, inputs: list[str]
) -> EmbeddingsResponse:
    """Embed 1..64 texts with the configured embedding model, within the caller's quota."""
    settings = services.settings
    services.llm.require()
    encoding = await encoding_for_model_async(
        settings.embedding_model, fallback=settings.fallback_encoding
    )
    counts = await count_texts_async(encoding.encoding, inputs)
    for index, tokens in enumerate(counts):
        if tokens > EMBEDDING_MAX_INPUT_TOKENS:
            raise EmbeddingInputTooLarge(
                index=index, tokens=tokens, limit=EMBEDDING_MAX_INPUT_TOKENS
            )
    # The request's own size, held before the model is called: what tiktoken counts of its
    # inputs (an embedding has no completion).
    reservation = await quota_manager.reserve_tokens(
        engine=services.engine,
        sessions=services.sessions,
        user_id=user_id,
        tokens=sum(counts),
        limit=settings.daily_token_quota,
    )
    try:
        result = await services.llm.embed(model=settings.embedding_model, inputs=inputs)
    except BaseException:
        await quota_manager.release_tokens(sessions=services.sessions, reservation=reservation)
        raise
    prompt_tokens = result.prompt_tokens if result.prompt_tokens is not None else sum(counts)
    async with services.sessions.begin() as session:
        await quota_manager.record_usage(
            session=session,
            reservation=reservation,
            kind="embedding",
            model=settings.embedding_model,
            conversation_id=None,
            prompt_tokens=prompt_tokens,
            completion_tokens=0,
            is_estimated=result.prompt_tokens is None,
        )
    return EmbeddingsResponse(
        model=settings.embedding_model,
        data=[
            Embedding(index=index, embedding=vector) for index, vector in enumerate(result.vectors)
        ],
        usage=EmbeddingUsage(prompt_tokens=prompt_tokens),
    )
