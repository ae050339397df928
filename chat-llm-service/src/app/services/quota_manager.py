"""The per-user daily token quota: reserve a call's own size before it is made, settle to what it
used (or release) after."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import anyio
from common_libs.request_id import get_request_id
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import usage_repository
from app.models.chat_models import UsageReport
from app.services.errors import QuotaExceeded

__all__ = [
    "Reservation",
    "abandon_hold",
    "record_usage",
    "release_tokens",
    "reserve_tokens",
    "resize_reservation",
    "usage_report",
]

_logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _next_reset(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(slots=True)
class Reservation:
    """Tokens held against a user's quota for one request's model calls (a turn's tool rounds
    change ``tokens``, see :func:`resize_reservation`)."""

    user_id: str
    day: date
    tokens: int


def _exceeded(*, day: date, limit: int, tokens: int) -> QuotaExceeded:
    resets_at = _next_reset(day)
    seconds = max(1, math.ceil((resets_at - _now()).total_seconds()))
    return QuotaExceeded(limit=limit, resets_at=resets_at, retry_after=seconds, tokens=tokens)


async def _hold(*, engine: AsyncEngine, user_id: str, tokens: int, limit: int) -> Reservation:
    day = _now().date()
    # Right before the model is called: one statement that is its own transaction (one round
    # trip), whose commit does not wait for the disk (the hold is a transient, see
    # usage_repository.skip_commit_flush).
    async with engine.connect() as connection:
        admitted = await usage_repository.reserve_tokens(
            connection, user_id=user_id, day=day, tokens=tokens, limit=limit
        )
    if not admitted:
        raise _exceeded(day=day, limit=limit, tokens=tokens)
    return Reservation(user_id=user_id, day=day, tokens=tokens)


async def reserve_tokens(
    *,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    user_id: str,
    tokens: int,
    limit: int,
) -> Reservation:
    """Hold ``tokens`` of today's quota (committed at once) when they fit what is left, or
    raise QuotaExceeded; a request that goes away meanwhile leaves nothing held."""
    holding = asyncio.create_task(_hold(engine=engine, user_id=user_id, tokens=tokens, limit=limit))
    try:
        # Shielded: a request that goes away must not cut the statement short.
        return await asyncio.shield(holding)
    except asyncio.CancelledError:
        await abandon_hold(holding, sessions=sessions)
        raise


async def _resize(
    *, engine: AsyncEngine, reservation: Reservation, tokens: int, limit: int
) -> bool:
    async with engine.connect() as connection:
        admitted = await usage_repository.resize_reservation(
            connection,
            user_id=reservation.user_id,
            day=reservation.day,
            held=reservation.tokens,
            tokens=tokens,
            limit=limit,
        )
    if admitted:
        reservation.tokens = tokens
    return admitted


async def resize_reservation(
    *, engine: AsyncEngine, reservation: Reservation, used: int, tokens: int, limit: int
) -> None:
    """Make ``reservation`` hold what its request ``used`` so far plus ``tokens`` more (the
    size of its next model call) when that fits the quota, or raise QuotaExceeded."""
    resizing = asyncio.create_task(
        _resize(engine=engine, reservation=reservation, tokens=used + tokens, limit=limit)
    )
    try:
        admitted = await asyncio.shield(resizing)
    except asyncio.CancelledError:
        # The caller settles the reservation next: only once it has its final size.
        with anyio.CancelScope(shield=True):
            await asyncio.wait({resizing})
        raise
    if not admitted:
        raise _exceeded(day=reservation.day, limit=limit, tokens=tokens)


async def abandon_hold(
    holding: asyncio.Task[Reservation], *, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Wait for a hold the request no longer needs (it went away while the hold was taken)
    and give it back if it was taken; never raises (it runs during cleanup)."""
    with anyio.CancelScope(shield=True):
        try:
            reservation = await asyncio.shield(holding)
        except Exception:  # refused (429) or failed: nothing is held
            return
        await release_tokens(sessions=sessions, reservation=reservation)


async def release_tokens(
    *, sessions: async_sessionmaker[AsyncSession], reservation: Reservation
) -> None:
    """Give a reservation back after a failed call; never raises (it runs during cleanup)."""
    with anyio.CancelScope(shield=True):
        try:
            async with sessions.begin() as session:
                await usage_repository.skip_commit_flush(session)
                await usage_repository.release_tokens(
                    session,
                    user_id=reservation.user_id,
                    day=reservation.day,
                    reserved=reservation.tokens,
                )
        except Exception:
            _logger.exception("releasing a token reservation failed")


async def record_usage(
    *,
    session: AsyncSession,
    reservation: Reservation,
    kind: Literal["chat", "embedding"],
    model: str,
    conversation_id: uuid.UUID | None,
    prompt_tokens: int,
    completion_tokens: int,
    is_estimated: bool,
) -> None:
    """Record one call's tokens and settle its reservation (in the caller's transaction)."""
    await usage_repository.insert_usage_record(
        session,
        user_id=reservation.user_id,
        kind=kind,
        model=model,
        conversation_id=conversation_id,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        is_estimated=is_estimated,
        request_id=get_request_id(),
    )
    await usage_repository.settle_tokens(
        session,
        user_id=reservation.user_id,
        day=reservation.day,
        reserved=reservation.tokens,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


async def usage_report(*, session: AsyncSession, user_id: str, limit: int) -> UsageReport:
    """The caller's tokens today (UTC) and the daily limit."""
    day = _now().date()
    usage = await usage_repository.get_daily_usage(session, user_id=user_id, day=day)
    return UsageReport(
        period=day,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        total_tokens=usage.total_tokens if usage else 0,
        limit=limit,
        resets_at=_next_reset(day),
    )
