"""Every query on idempotency keys: the claim, the stored answer, the purge.

The claim itself is part of the statement that inserts the pending order
(``order_repository.place_pending_order``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import IdempotencyKey

__all__ = [
    "KeyRecord",
    "drop_key",
    "get_key",
    "purge_expired_keys",
    "store_response",
]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A claimed key: what was asked, for which order, and the final answer once there is one."""

    request_hash: str
    order_id: uuid.UUID
    response_status: int | None
    response_body: dict[str, Any] | None


async def get_key(connection: AsyncConnection, *, user_id: str, key: str) -> KeyRecord | None:
    """The claim on ``(user_id, key)``, or None when there is none."""
    row = (
        await connection.execute(
            select(
                IdempotencyKey.request_hash,
                IdempotencyKey.order_id,
                IdempotencyKey.response_status,
                IdempotencyKey.response_body,
            ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        )
    ).first()
    if row is None:
        return None
    return KeyRecord(row.request_hash, row.order_id, row.response_status, row.response_body)


async def store_response(
    connection: AsyncConnection, *, order_id: uuid.UUID, status: int, body: dict[str, Any]
) -> None:
    """Record the final answer of the request that created ``order_id``, for replays."""
    await connection.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.order_id == order_id)
        .values(response_status=status, response_body=body)
    )


async def drop_key(connection: AsyncConnection, *, order_id: uuid.UUID) -> None:
    """Forget the claim that created ``order_id``, so that a retry with its key starts afresh."""
    await connection.execute(delete(IdempotencyKey).where(IdempotencyKey.order_id == order_id))


async def purge_expired_keys(connection: AsyncConnection, *, limit: int) -> int:
    """Delete up to ``limit`` expired keys; returns how many went."""
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at < func.now())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await connection.execute(
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired))
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
