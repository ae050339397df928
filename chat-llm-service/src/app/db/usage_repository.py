"""Every query on token usage: per-request records and per-user daily totals."""

from __future__ import annotations

import uuid
from datetime import date

from common_libs.db import driver_fetch
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.tables import DailyUsage, UsageRecord

__all__ = [
    "ERASED_USER_ID",
    "anonymize_user_usage",
    "get_daily_usage",
    "insert_usage_record",
    "release_tokens",
    "reserve_tokens",
    "resize_reservation",
    "settle_tokens",
    "skip_commit_flush",
]

# A model call runs this right before it is made: one statement, its own transaction, run
# through asyncpg itself (common-libs' driver_fetch). It admits only while used + reserved +
# the call's own size fit the limit (a first row of the day too: the SELECT yields no row
# otherwise), and its commit does not wait for the disk: set_config(..., true) sets
# synchronous_commit for the
# statement's own transaction only, as SET LOCAL does (see skip_commit_flush). Concurrent holds
# of one user meet at the row (its unique index, then its lock), and PostgreSQL evaluates the
# WHERE of the update on the row's newest version: two holds that fit alone but not together
# cannot both pass.
_RESERVE = """
    INSERT INTO daily_usage (user_id, day, reserved_tokens)
    SELECT CAST($1 AS varchar), CAST($2 AS date), CAST($3 AS bigint)
    FROM (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_flush
    WHERE CAST($3 AS bigint) <= CAST($4 AS bigint)
    ON CONFLICT (user_id, day) DO UPDATE
        SET reserved_tokens = daily_usage.reserved_tokens + excluded.reserved_tokens
        WHERE daily_usage.total_tokens + daily_usage.reserved_tokens + excluded.reserved_tokens
            <= CAST($4 AS bigint)
    RETURNING user_id
"""
# The next model call of a turn (a tool round): its hold becomes $3 tokens instead of $4 (what the
# turn used so far plus the next call's size), on the same terms as _RESERVE.
_RESIZE = """
    UPDATE daily_usage
    SET reserved_tokens = reserved_tokens + (CAST($3 AS bigint) - CAST($4 AS bigint))
    FROM (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_flush
    WHERE user_id = CAST($1 AS varchar) AND day = CAST($2 AS date)
        AND total_tokens + reserved_tokens + (CAST($3 AS bigint) - CAST($4 AS bigint))
            <= CAST($5 AS bigint)
    RETURNING user_id
"""
ERASED_USER_ID = "erased"
"""The ``user_id`` of usage records whose user was deleted (user ids are UUIDs: never this)."""
_SKIP_COMMIT_FLUSH = text("SET LOCAL synchronous_commit TO OFF")


async def skip_commit_flush(session: AsyncSession) -> None:
    """Let this transaction's COMMIT return before its WAL record reaches the disk.

    For quota holds only (``synchronous_commit`` for one transaction; see PostgreSQL's
    "Asynchronous Commit"): the hold is visible to every other transaction at once, exactly as
    with a flushed commit, so admission stays atomic; only a crash of the database server
    itself can forget the holds committed in its last moments (a forgotten hold admits a few
    more calls that day; what they use is still recorded by :func:`settle_tokens`).
    """
    await session.execute(_SKIP_COMMIT_FLUSH)


async def reserve_tokens(
    connection: AsyncConnection, *, user_id: str, day: date, tokens: int, limit: int
) -> bool:
    """Reserve ``tokens`` when the day's used + reserved tokens + ``tokens`` fit ``limit``.

    One conditional upsert: concurrent requests cannot all pass a check made before any of
    them wrote, so the quota is never passed by what is held. Outside a transaction it is a
    transaction of its own, committed without waiting for the disk (as
    :func:`skip_commit_flush` does for a transaction of several statements).
    """
    return bool(await driver_fetch(connection, _RESERVE, user_id, day, tokens, limit))


async def resize_reservation(
    connection: AsyncConnection, *, user_id: str, day: date, held: int, tokens: int, limit: int
) -> bool:
    """Turn a hold of ``held`` tokens into one of ``tokens`` when the day's used + reserved
    tokens fit ``limit`` after the change; one statement, as :func:`reserve_tokens`."""
    return bool(await driver_fetch(connection, _RESIZE, user_id, day, tokens, held, limit))


async def settle_tokens(
    session: AsyncSession,
    *,
    user_id: str,
    day: date,
    reserved: int,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Replace a reservation by the tokens actually used.

    An upsert, so the tokens are counted even when the day's row is missing (its hold was
    forgotten by a database crash, see :func:`skip_commit_flush`).
    """
    used = prompt_tokens + completion_tokens
    new_row = pg_insert(DailyUsage).values(
        user_id=user_id,
        day=day,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=used,
        reserved_tokens=0,
    )
    await session.execute(
        new_row.on_conflict_do_update(
            index_elements=[DailyUsage.user_id, DailyUsage.day],
            set_={
                "reserved_tokens": func.greatest(DailyUsage.reserved_tokens - reserved, 0),
                "prompt_tokens": DailyUsage.prompt_tokens + prompt_tokens,
                "completion_tokens": DailyUsage.completion_tokens + completion_tokens,
                "total_tokens": DailyUsage.total_tokens + used,
            },
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


async def anonymize_user_usage(connection: AsyncConnection, *, user_id: str) -> int:
    """Detach the user's usage records from them and drop their quota rows; how many records.

    One statement. The records keep what accounting needs (kind, model, tokens, when) under
    :data:`ERASED_USER_ID`, without the request id (it leads to the request's log lines) or the
    conversation. ``daily_usage`` is only the quota's running state, keyed by the user: it goes,
    and its totals stay in the records.
    """
    quota = delete(DailyUsage).where(DailyUsage.user_id == user_id).cte("erased_quota")
    statement = (
        update(UsageRecord)
        .where(UsageRecord.user_id == user_id)
        .values(user_id=ERASED_USER_ID, request_id=None, conversation_id=None)
        .add_cte(quota)
    )
    return (await connection.execute(statement)).rowcount
