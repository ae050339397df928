"""The async engine, one session per request, and the database readiness check."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from app.config import Settings

_CHECKED_IN_AT = "checked_in_at"
_PoolListener = Callable[[Any, ConnectionPoolEntry, Any], None]


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_when_idle(threshold_seconds: float) -> _PoolListener:
    """A checkout listener that pings only connections idle for over ``threshold_seconds``.

    ``pool_pre_ping`` pings on every checkout: with asyncpg that is BEGIN, a query and ROLLBACK,
    three round trips before each of a chat turn's short transactions. A connection in steady
    use is proven by its last use; one that sat idle (across a database restart, say) is
    checked, and replaced by the pool when the check fails.
    """

    def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle = time.monotonic() - record.info.get(_CHECKED_IN_AT, time.monotonic())
        if idle >= threshold_seconds:
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise exc.DisconnectionError from error

    return ping_if_idle


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the service's connection pool (asyncpg); connections are opened lazily."""
    engine = create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _note_checkin)
    event.listen(pool, "checkout", _ping_when_idle(settings.database_idle_ping_seconds))
    return engine


async def ping_database(engine: AsyncEngine) -> None:
    """Run ``SELECT 1``; raises when the database does not answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session; commit when the handler returns, roll back when it raises."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
