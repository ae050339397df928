"""The caller's conversations: list, read with messages, delete (others' answer 404)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from common_libs.pagination import InvalidCursor, Page, PageParams, encode_cursor
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import chat_repository
from app.models.chat_models import ChatMessage, ConversationDetail, ConversationSummary
from app.services.errors import ConversationNotFound

__all__ = ["delete_conversation", "get_conversation", "list_conversations"]


def _position(cursor: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
    try:
        created_at = datetime.fromisoformat(cursor["c"])
        conversation_id = uuid.UUID(cursor["i"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor from exc
    if created_at.tzinfo is None:
        raise InvalidCursor
    return created_at, conversation_id


async def list_conversations(
    *, engine: AsyncEngine, owner_id: str, page: PageParams
) -> Page[ConversationSummary]:
    """One page of the owner's conversations, newest first (one statement, in autocommit)."""
    after = _position(page.cursor) if page.cursor is not None else None
    async with engine.connect() as connection:
        rows = await chat_repository.list_conversations(
            connection, owner_id=owner_id, limit=page.limit + 1, after=after
        )
    # The database's own values, of the model's types: no validation to run on them again.
    items = [
        ConversationSummary.model_construct(
            id=row["id"],
            title=row["title"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        for row in rows
    ]
    next_cursor = None
    if len(items) > page.limit:
        items = items[: page.limit]
        last = items[-1]
        next_cursor = encode_cursor({"c": last.created_at.isoformat(), "i": str(last.id)})
    return Page[ConversationSummary](items=items, next_cursor=next_cursor)


async def get_conversation(
    *, session: AsyncSession, owner_id: str, conversation_id: uuid.UUID
) -> ConversationDetail:
    """The owner's conversation with its messages, oldest first."""
    conversation = await chat_repository.get_conversation(
        session, conversation_id=conversation_id, owner_id=owner_id
    )
    if conversation is None:
        raise ConversationNotFound
    messages = await chat_repository.list_messages(session, conversation_id=conversation_id)
    summary = ConversationSummary.model_validate(conversation, from_attributes=True)
    return ConversationDetail(
        **summary.model_dump(),
        messages=[ChatMessage.model_validate(row, from_attributes=True) for row in messages],
    )


async def delete_conversation(
    *, session: AsyncSession, owner_id: str, conversation_id: uuid.UUID
) -> None:
    """Delete the owner's conversation and its messages (usage records stay, unlinked)."""
    deleted = await chat_repository.delete_conversation(
        session, conversation_id=conversation_id, owner_id=owner_id
    )
    if not deleted:
        raise ConversationNotFound
