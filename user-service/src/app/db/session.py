"""The async engine, one session per request, and the database readiness check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.config import Settings


class KeepsChanges(Exception):
    """Mixin for errors whose request must still commit what it wrote before raising them.

    A replayed refresh token answers 401 *and* revokes its family: the revocation must persist.
    """


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the service's connection pool (asyncpg); connections are opened lazily."""
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        # Statement parameters (password hashes, token hashes) never appear in errors or logs.
        hide_parameters=True,
    )


async def ping_database(engine: AsyncEngine) -> None:
    """Run ``SELECT 1``; raises when the database does not answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit when the block ends, roll back when it raises (commit for ``KeepsChanges``)."""
    try:
        yield session
    except KeepsChanges:
        await session.commit()
        raise
    except BaseException:
        await session.rollback()
        raise
    await session.commit()


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session inside a unit of work."""
    async with request.app.state.sessionmaker() as session, unit_of_work(session):
        yield session
