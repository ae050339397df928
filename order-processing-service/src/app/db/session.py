"""The async engine, one session per request, the saga's unit of work, and the readiness check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the service's connection pool (asyncpg); connections are opened lazily."""
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
    )


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


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One short transaction that commits when the block ends and rolls back when it raises.

    The documented exception to "the request's session commits": the order saga must make the
    ``pending`` order durable BEFORE it calls the catalog (so that a crash leaves a row the
    reconciler finds), and confirm or fail it in separate short transactions afterwards. Every
    such commit goes through here and nowhere else.
    """
    async with sessionmaker() as session, session.begin():
        yield session
