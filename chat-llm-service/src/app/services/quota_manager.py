"""The per-user daily token quota: reserve before an upstream call, settle or release after."""

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
    "usage_report",
]

_logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _next_reset(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens held against a user's quota for one upstream call."""

    user_id: str
    day: date
    tokens: int


async def reserve_tokens(
    *, engine: AsyncEngine, user_id: str, tokens: int, limit: int
) -> Reservation:
    """Hold ``tokens`` of today's quota (committed at once), or raise QuotaExceeded."""
    day = _now().date()
    # A chat turn reserves right before it calls the model: one statement that is its own
    # transaction (one round trip), whose commit does not wait for the disk (the hold is a
    # transient, see usage_repository.skip_commit_flush).
    async with engine.connect() as connection:
        admitted = await usage_repository.reserve_tokens(
            connection, user_id=user_id, day=day, tokens=tokens, limit=limit
        )
    if not admitted:
        resets_at = _next_reset(day)
        seconds = max(1, math.ceil((resets_at - _now()).total_seconds()))
        raise QuotaExceeded(limit=limit, resets_at=resets_at, retry_after=seconds)
    return Reservation(user_id=user_id, day=day, tokens=tokens)


async def abandon_hold(
    holding: asyncio.Task[Reservation], *, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Wait for a hold the turn no longer needs (its prompt failed, or the request went away)
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
