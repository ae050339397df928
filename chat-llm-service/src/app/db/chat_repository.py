"""Every query on conversations and messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from common_libs.db import driver_fetch
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.tables import Conversation, Message

__all__ = [
    "delete_conversation",
    "delete_owner_conversations",
    "get_conversation",
    "insert_conversation",
    "insert_message",
    "list_conversations",
    "list_messages",
    "lock_conversation",
    "recent_messages",
]


async def get_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID, owner_id: str
) -> Conversation | None:
    """The conversation when it exists and belongs to ``owner_id``."""
    statement = select(Conversation).where(
        Conversation.id == conversation_id, Conversation.owner_id == owner_id
    )
    return (await session.execute(statement)).scalar_one_or_none()


# The owner's list (``GET /chat/conversations``), run through asyncpg itself (common-libs'
# ``driver_fetch``): SQLAlchemy's statement building and execution were a quarter of the CPU of
# the request. The index on (owner_id, created_at, id) serves both.
_COLUMNS = "SELECT id, title, created_at, updated_at FROM conversations WHERE owner_id = $1"
_ORDER = " ORDER BY created_at DESC, id DESC LIMIT $2"
_LIST = _COLUMNS + _ORDER
_LIST_AFTER = _COLUMNS + " AND (created_at, id) < ($3, $4)" + _ORDER


async def list_conversations(
    connection: AsyncConnection,
    *,
    owner_id: str,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Any]:
    """Up to ``limit`` of the owner's conversations (``asyncpg.Record``: id, title, created_at,
    updated_at), newest first, after a keyset position. Raises asyncpg's errors, not
    SQLAlchemy's (``driver_fetch``)."""
    if after is None:
        return await driver_fetch(connection, _LIST, owner_id, limit)
    return await driver_fetch(connection, _LIST_AFTER, owner_id, limit, *after)


async def list_messages(session: AsyncSession, *, conversation_id: uuid.UUID) -> Sequence[Message]:
    """The questions and answers of a conversation, oldest first: without the tool exchanges
    (what the assistant looked up is in its answers; API.md's messages are the two roles)."""
    statement = (
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.role != "tool",
            Message.tool_calls.is_(None),
        )
        .order_by(Message.position)
    )
    return (await session.execute(statement)).scalars().all()


async def recent_messages(
    session: AsyncSession, *, conversation_id: uuid.UUID, limit: int
) -> Sequence[Message]:
    """The newest ``limit`` messages of a conversation, newest first."""
    statement = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.position.desc())
        .limit(limit)
    )
    return (await session.execute(statement)).scalars().all()


async def insert_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID, owner_id: str, title: str
) -> None:
    """Create a conversation."""
    await session.execute(
        insert(Conversation).values(id=conversation_id, owner_id=owner_id, title=title)
    )


async def lock_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID, owner_id: str
) -> bool:
    """Mark the conversation updated, holding its row lock until commit; False when gone.

    Appending under this lock keeps each question and its reply adjacent even when two
    replies for the same conversation finish at the same time.
    """
    statement = (
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.owner_id == owner_id)
        .values(updated_at=func.now())
        .returning(Conversation.id)
    )
    return (await session.execute(statement)).first() is not None


async def insert_message(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    role: str,
    content: str,
    is_complete: bool = True,
    tool_calls: list[dict[str, str]] | None = None,
    tool_call_id: str | None = None,
) -> None:
    """Append a message to a conversation."""
    await session.execute(
        insert(Message).values(
            id=uuid.uuid4(),
            conversation_id=conversation_id,
            role=role,
            content=content,
            is_complete=is_complete,
            tool_calls=tool_calls,
            tool_call_id=tool_call_id,
        )
    )


async def delete_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID, owner_id: str
) -> bool:
    """Delete the owner's conversation and its messages; False when there was none."""
    statement = (
        delete(Conversation)
        .where(Conversation.id == conversation_id, Conversation.owner_id == owner_id)
        .returning(Conversation.id)
    )
    return (await session.execute(statement)).first() is not None


async def delete_owner_conversations(connection: AsyncConnection, *, owner_id: str) -> int:
    """Delete all of the owner's conversations and their messages; how many there were.

    The foreign keys do the rest in the same statement: messages cascade, and the usage records
    of these conversations lose their ``conversation_id``.
    """
    statement = delete(Conversation).where(Conversation.owner_id == owner_id)
    return (await connection.execute(statement)).rowcount
