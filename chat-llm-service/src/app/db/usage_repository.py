"""Every query on token usage: per-request records and per-user daily totals."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import DailyUsage, UsageRecord

__all__ = [
    "get_daily_usage",
    "insert_usage_record",
    "release_tokens",
    "reserve_tokens",
    "settle_tokens",
]


async def reserve_tokens(
    session: AsyncSession, *, user_id: str, day: date, tokens: int, limit: int
) -> bool:
    """Reserve ``tokens`` while the day's used + reserved tokens are under ``limit``.

    One conditional upsert: concurrent requests cannot all pass a check made before any of
    them wrote, so the quota is overshot by at most the one request that crossed it.
    """
    new_row = pg_insert(DailyUsage).values(user_id=user_id, day=day, reserved_tokens=tokens)
    statement = new_row.on_conflict_do_update(
        index_elements=[DailyUsage.user_id, DailyUsage.day],
        set_={"reserved_tokens": DailyUsage.reserved_tokens + new_row.excluded.reserved_tokens},
        where=(DailyUsage.total_tokens + DailyUsage.reserved_tokens) < limit,
    ).returning(DailyUsage.user_id)
    return (await session.execute(statement)).first() is not None


async def settle_tokens(
    session: AsyncSession,
    *,
    user_id: str,
    day: date,
    reserved: int,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Replace a reservation by the tokens actually used."""
    await session.execute(
        update(DailyUsage)
        .where(DailyUsage.user_id == user_id, DailyUsage.day == day)
        .values(
            reserved_tokens=func.greatest(DailyUsage.reserved_tokens - reserved, 0),
            prompt_tokens=DailyUsage.prompt_tokens + prompt_tokens,
            completion_tokens=DailyUsage.completion_tokens + completion_tokens,
            total_tokens=DailyUsage.total_tokens + prompt_tokens + completion_tokens,
        )
    )


async def release_tokens(session: AsyncSession, *, user_id: str, day: date, reserved: int) -> None:
    """Give a reservation back (the call failed and used nothing that was billed)."""
    await session.execute(
        update(DailyUsage)
        .where(DailyUsage.user_id == user_id, DailyUsage.day == day)
        .values(reserved_tokens=func.greatest(DailyUsage.reserved_tokens - reserved, 0))
    )


async def insert_usage_record(
    session: AsyncSession,
    *,
    user_id: str,
    kind: str,
    model: str,
    conversation_id: uuid.UUID | None,
    prompt_tokens: int,
    completion_tokens: int,
    is_estimated: bool,
    request_id: str | None,
) -> None:
    """Record the tokens one upstream call used."""
    await session.execute(
        insert(UsageRecord).values(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=kind,
            model=model,
            conversation_id=conversation_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
            is_estimated=is_estimated,
            request_id=request_id,
        )
    )


async def get_daily_usage(session: AsyncSession, *, user_id: str, day: date) -> DailyUsage | None:
    """The user's totals for ``day``, or None when they used nothing."""
    statement = select(DailyUsage).where(DailyUsage.user_id == user_id, DailyUsage.day == day)
    return (await session.execute(statement)).scalar_one_or_none()
