"""Routes of the caller's conversations (owner only; others' answer 404)."""

from __future__ import annotations

import uuid

from common_libs.pagination import Page, PageQuery
from common_libs.problems import problem_responses
from fastapi import APIRouter, Response

from app.dependencies import CurrentPrincipal, DbSession
from app.models.chat_models import ConversationDetail, ConversationSummary
from app.services import conversation_manager

router = APIRouter(prefix="/chat/conversations", tags=["conversations"])

_PROBLEMS = {
    404: "No such conversation (or it belongs to someone else).",
    503: "The token issuer's keys cannot be fetched right now (`Retry-After`).",
}


@router.get(
    "",
    response_model=Page[ConversationSummary],
    responses=problem_responses(401, 422, 503, descriptions=_PROBLEMS),
)
async def list_conversations(
    principal: CurrentPrincipal, session: DbSession, page: PageQuery
) -> Page[ConversationSummary]:
    """The caller's conversations, newest first, cursor-paginated."""
    return await conversation_manager.list_conversations(
        session=session, owner_id=principal.subject, page=page
    )


@router.get(
    "/{conversation_id}",
    response_model=ConversationDetail,
    responses=problem_responses(401, 404, 422, 503, descriptions=_PROBLEMS),
)
async def get_conversation(
    conversation_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession
) -> ConversationDetail:
    """One of the caller's conversations with its messages, oldest first."""
    return await conversation_manager.get_conversation(
        session=session, owner_id=principal.subject, conversation_id=conversation_id
    )


@router.delete(
    "/{conversation_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 422, 503, descriptions=_PROBLEMS),
)
async def delete_conversation(
    conversation_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession
) -> None:
    """Delete one of the caller's conversations and its messages."""
    await conversation_manager.delete_conversation(
        session=session, owner_id=principal.subject, conversation_id=conversation_id
    )
