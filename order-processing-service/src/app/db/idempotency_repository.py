"""Every query on idempotency keys: the atomic claim, the stored answer, the purge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, null, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import IdempotencyKey

__all__ = [
    "KeyRecord",
    "claim_key",
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


async def claim_key(
    session: AsyncSession,
    *,
    user_id: str,
    key: str,
    request_hash: str,
    order_id: uuid.UUID,
    ttl: timedelta,
) -> bool:
    """Claim ``(user_id, key)`` for ``order_id`` in one statement; False when someone holds it.

    ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``: a live claim is left alone (nothing is
    returned), an expired one that the purge has not removed yet is taken over atomically.
    """
    inserting = insert(IdempotencyKey).values(
        user_id=user_id,
        key=key,
        request_hash=request_hash,
        order_id=order_id,
        expires_at=func.now() + ttl,
    )
    statement = inserting.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={
            "request_hash": inserting.excluded.request_hash,
            "order_id": inserting.excluded.order_id,
            "response_status": null(),
            "response_body": null(),
            "created_at": func.now(),
            "expires_at": inserting.excluded.expires_at,
        },
        where=IdempotencyKey.expires_at < func.now(),
    ).returning(IdempotencyKey.order_id)
    return (await session.execute(statement)).first() is not None


async def get_key(session: AsyncSession, *, user_id: str, key: str) -> KeyRecord | None:
    """The claim on ``(user_id, key)``, or None when there is none."""
    row = (
        await session.execute(
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
    session: AsyncSession, *, order_id: uuid.UUID, status: int, body: dict[str, Any]
) -> None:
    """Record the final answer of the request that created ``order_id``, for replays."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.order_id == order_id)
        .values(response_status=status, response_body=body)
    )


async def drop_key(session: AsyncSession, *, order_id: uuid.UUID) -> None:
    """Forget the claim that created ``order_id``, so that a retry with its key starts afresh."""
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.order_id == order_id))


async def purge_expired_keys(session: AsyncSession, *, limit: int) -> int:
    """Delete up to ``limit`` expired keys; returns how many went."""
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at < func.now())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired))
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
