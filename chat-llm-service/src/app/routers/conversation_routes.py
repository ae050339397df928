"""Routes of the caller's conversations (owner only; others' answer 404)."""

from __future__ import annotations

import uuid

from common_libs.pagination import Page, PageQuery
from common_libs.problem_types import INVALID_CURSOR, VALIDATION_FAILED
from common_libs.problems import problem_responses
from fastapi import APIRouter, Response

from app.dependencies import CURRENT_PRINCIPAL_PROBLEMS, CurrentPrincipal, DbSession, ReadEngine
from app.models.chat_models import ConversationDetail, ConversationSummary
from app.services import conversation_manager
from app.services.errors import ConversationNotFound

router = APIRouter(prefix="/chat/conversations", tags=["conversations"])

_PROBLEMS = {
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`, with "
    '`error="invalid_token"` and an `error_description` when a token was sent).',
    404: "No such conversation (or it belongs to someone else).",
    503: "The token issuer's keys or the database are unavailable right now (`Retry-After`).",
}


@router.get(
    "",
    response_model=Page[ConversationSummary],
    responses=problem_responses(
        *CURRENT_PRINCIPAL_PROBLEMS,
        VALIDATION_FAILED,
        INVALID_CURSOR,
        descriptions={
            **_PROBLEMS,
            422: "A bad `limit` (1..100) or a cursor not from a previous page.",
        },
    ),
)
async def list_conversations(
    principal: CurrentPrincipal, engine: ReadEngine, page: PageQuery
) -> Page[ConversationSummary]:
    """The caller's conversations, newest first, cursor-paginated."""
    return await conversation_manager.list_conversations(
        engine=engine, owner_id=principal.subject, page=page
    )


@router.get(
    "/{conversation_id}",
    response_model=ConversationDetail,
    responses=problem_responses(
        *CURRENT_PRINCIPAL_PROBLEMS, ConversationNotFound, VALIDATION_FAILED, descriptions=_PROBLEMS
    ),
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
    responses=problem_responses(
        *CURRENT_PRINCIPAL_PROBLEMS, ConversationNotFound, VALIDATION_FAILED, descriptions=_PROBLEMS
    ),
)
async def delete_conversation(
    conversation_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession
) -> None:
    """Delete one of the caller's conversations and its messages."""
    await conversation_manager.delete_conversation(
        session=session, owner_id=principal.subject, conversation_id=conversation_id
    )
