"""Erasure of a deleted user's data: the consumer of ``users.user.deleted`` (API.md, "Events").

What the user wrote (their conversations and messages) is deleted; their usage records stay for
accounting, detached from them (see :func:`app.db.usage_repository.anonymize_user_usage`).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from common_libs.events import USERS, AnyEvent, Broker, EventConsumer
from common_libs.service_app import run_in_background
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import chat_repository, usage_repository

__all__ = ["CONSUMER_NAME", "erase_user", "start_user_erasure"]

CONSUMER_NAME = "chat-llm-service-user-erasure"
_logger = logging.getLogger(__name__)


async def erase_user(connection: AsyncConnection, event: AnyEvent) -> None:
    """Erase the deleted user's data in the consumer's transaction; a second run finds nothing."""
    user_id = event.subject
    conversations = await chat_repository.delete_owner_conversations(connection, owner_id=user_id)
    records = await usage_repository.anonymize_user_usage(connection, user_id=user_id)
    _logger.info(
        "erased a deleted user's data: %d conversations deleted, %d usage records anonymized",
        conversations,
        records,
    )


def start_user_erasure(
    stack: AsyncExitStack, *, engine: AsyncEngine, broker: Broker
) -> EventConsumer:
    """Consume ``users.user.deleted`` in the background until ``stack`` closes."""
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        stream=USERS,
        subject="users.user.deleted",
        engine=engine,
        broker=broker,
        handler=erase_user,
    )
    run_in_background(stack, consumer.run(), name=CONSUMER_NAME)
    return consumer
