"""Chat turns: check the conversation, ground in the catalog's read model, build the prompt, ask,
store."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import chat_repository
from app.models.chat_models import AssistantMessage, GenerateResponse, TokenUsage
from app.services import quota_manager
from app.services.catalog_read_model import CatalogSearchFailed
from app.services.context import ChatServices
from app.services.errors import ConversationNotFound
from app.services.llm_integration import PromptMessage, ReportedUsage
from app.services.prompt_builder import (
    Prompt,
    build_prompt,
    grounding_text,
    prompt_tokens_bound,
    search_terms,
)
from app.services.quota_manager import Reservation
from app.utils.token_counter import ModelEncoding, count_text_async, encoding_for_model_async

__all__ = [
    "Turn",
    "generate_response",
    "prepare_turn",
    "store_turn",
]

_logger = logging.getLogger(__name__)

# The newest messages considered for the prompt; trimming to the token budget happens after.
HISTORY_MESSAGES = 100
TITLE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Turn:
    """One question on its way to the model, with its prompt and quota reservation."""

    user_id: str
    conversation_id: uuid.UUID
    is_new: bool
    message: str
    encoding: ModelEncoding
    prompt: Prompt
    reservation: Reservation

    @property
    def model(self) -> str:
        """The chat model the turn is sent to."""
        return self.encoding.model


async def _load_history(
    services: ChatServices, *, user_id: str, conversation_id: uuid.UUID
) -> list[PromptMessage]:
    async with services.sessions() as session:
        conversation = await chat_repository.get_conversation(
            session, conversation_id=conversation_id, owner_id=user_id
        )
        if conversation is None:
            raise ConversationNotFound
        rows = await chat_repository.recent_messages(
            session, conversation_id=conversation_id, limit=HISTORY_MESSAGES
        )
    return [
        PromptMessage("assistant" if row.role == "assistant" else "user", row.content)
        for row in rows
    ]


async def _grounding(services: ChatServices, message: str) -> str | None:
    limit = services.settings.grounding_products
    if limit == 0:
        return None
    try:
        products = await services.catalog.search_products(terms=search_terms(message), limit=limit)
    except CatalogSearchFailed as exc:
        _logger.warning("catalog read model search failed; answering without grounding: %s", exc)
        return grounding_text(None)
    return grounding_text(products)


async def prepare_turn(
    *, services: ChatServices, user_id: str, message: str, conversation_id: uuid.UUID | None
) -> Turn:
    """Everything before the upstream call; raises 503, 404, 413 or 429 problems."""
    settings = services.settings
    services.llm.require()
    history: list[PromptMessage] = []
    if conversation_id is not None:
        history = await _load_history(services, user_id=user_id, conversation_id=conversation_id)
    encoding = await encoding_for_model_async(
        settings.chat_model, fallback=settings.fallback_encoding
    )
    # The quota hold goes to the database while the catalog is searched (two connections at
    # once: one round trip less before the model is called). Its amount is fixed before the
    # grounding is known, so it holds the most the prompt can cost, plus the reply; the turn
    # settles to what was used. Admission does not depend on the amount (used + held < limit).
    budget = settings.context_window_tokens - settings.max_output_tokens
    most = prompt_tokens_bound(
        message=message,
        history=history,
        grounding_products=settings.grounding_products,
        budget=budget,
    )
    holding = asyncio.create_task(
        quota_manager.reserve_tokens(
            engine=services.engine,
            user_id=user_id,
            tokens=most + settings.max_output_tokens,
            limit=settings.daily_token_quota,
        )
    )
    try:
        grounding = await _grounding(services, message)
        prompt = await build_prompt(
            encoding=encoding.encoding,
            message=message,
            history=history,
            grounding=grounding,
            context_window=settings.context_window_tokens,
            max_output_tokens=settings.max_output_tokens,
        )
        # Shielded: a request that goes away must not cut the hold's statement short.
        reservation = await asyncio.shield(holding)  # QuotaExceeded (429), after any 413
    except BaseException:
        await quota_manager.abandon_hold(holding, sessions=services.sessions)
        raise
    return Turn(
        user_id=user_id,
        conversation_id=conversation_id or uuid.uuid4(),
        is_new=conversation_id is None,
        message=message,
        encoding=encoding,
        prompt=prompt,
        reservation=reservation,
    )


async def _usage(turn: Turn, answer: str, reported: ReportedUsage | None) -> tuple[int, int, bool]:
    if reported is not None:
        return reported.prompt_tokens, reported.completion_tokens, False
    completion = await count_text_async(turn.encoding.encoding, answer)
    return turn.prompt.prompt_tokens, completion, True


async def _append_turn(
    session: AsyncSession, turn: Turn, *, answer: str, is_complete: bool
) -> bool:
    """Add the question and the answer to the conversation; False when it is gone."""
    if turn.is_new:
        await chat_repository.insert_conversation(
            session,
            conversation_id=turn.conversation_id,
            owner_id=turn.user_id,
            title=" ".join(turn.message.split())[:TITLE_CHARS] or "Conversation",
        )
    elif not await chat_repository.lock_conversation(
        session, conversation_id=turn.conversation_id, owner_id=turn.user_id
    ):
        return False
    await chat_repository.insert_message(
        session, conversation_id=turn.conversation_id, role="user", content=turn.message
    )
    if answer or is_complete:
        await chat_repository.insert_message(
            session,
            conversation_id=turn.conversation_id,
            role="assistant",
            content=answer,
            is_complete=is_complete,
        )
    return True


async def store_turn(
    *,
    services: ChatServices,
    turn: Turn,
    answer: str,
    reported: ReportedUsage | None,
    is_complete: bool,
) -> TokenUsage:
    """Store the question and the (possibly partial) answer, and account for the tokens."""
    prompt_tokens, completion_tokens, is_estimated = await _usage(turn, answer, reported)
    # Shielded: a client that leaves mid-write must not leave half a turn behind.
    with anyio.CancelScope(shield=True):
        try:
            async with services.sessions.begin() as session:
                present = await _append_turn(session, turn, answer=answer, is_complete=is_complete)
                await quota_manager.record_usage(
                    session=session,
                    reservation=turn.reservation,
                    kind="chat",
                    model=turn.model,
                    conversation_id=turn.conversation_id if present else None,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    is_estimated=is_estimated,
                )
        except Exception:
            await quota_manager.release_tokens(
                sessions=services.sessions, reservation=turn.reservation
            )
            raise
    if not present:
        raise ConversationNotFound("The conversation was deleted while the reply was written.")
    return TokenUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


async def generate_response(
    *, services: ChatServices, user_id: str, message: str, conversation_id: uuid.UUID | None
) -> GenerateResponse:
    """Answer a message in one piece and store both sides of the turn."""
    turn = await prepare_turn(
        services=services, user_id=user_id, message=message, conversation_id=conversation_id
    )
    try:
        completion = await services.llm.complete(
            model=turn.model,
            messages=turn.prompt.messages,
            max_tokens=services.settings.max_output_tokens,
        )
    except BaseException:
        await quota_manager.release_tokens(sessions=services.sessions, reservation=turn.reservation)
        raise
    usage = await store_turn(
        services=services,
        turn=turn,
        answer=completion.content,
        reported=completion.usage,
        is_complete=True,
    )
    return GenerateResponse(
        conversation_id=turn.conversation_id,
        message=AssistantMessage(content=completion.content),
        usage=usage,
        model=turn.model,
    )
