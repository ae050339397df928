"""The service's engine and the request's session, in a unit of work that knows ``KeepsChanges``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from common_libs.db import create_engine as create_pool
from common_libs.db import engine_from_settings
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.config import Settings

# What a read runs on: a request's session, or the connection of a request that only reads.
Reader = AsyncSession | AsyncConnection
# How a request that only reads gets that connection: ``async with connect() as db``.
ReadConnect = Callable[[], AbstractAsyncContextManager[Reader]]


class KeepsChanges(Exception):
    """Mixin for errors whose request must still commit what it wrote before raising them.

    A replayed refresh token answers 401 *and* revokes its family: the revocation must persist.
    """


def create_engine(settings: Settings) -> AsyncEngine:
    """The service's pool, sized by its settings; connections are opened lazily."""
    return engine_from_settings(settings)


def create_limits_engine(settings: Settings) -> AsyncEngine:
    """A small pool of its own for the rate limits' counters (common-libs' ``RateLimiter``).

    A login resets its count while the request's session holds a connection (it waits for the
    password hash with it); sharing the request's pool, a burst of logins could hold every
    connection while each waits for another. These connections only ever run one statement.
    """
    return create_pool(
        settings.database_url.get_secret_value(),
        pool_size=2,
        max_overflow=8,
        idle_ping_seconds=settings.database_idle_ping_seconds,
    )


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


async def get_read_connect(request: Request) -> ReadConnect:
    """How a request that only reads gets its connection: the read-only engine's ``connect``,
    which its manager enters around its one statement (released before the response is built).

    Not a yield dependency handing out the connection: FastAPI runs those in an anyio cancel
    scope of their own, about a quarter of the CPU of a ``GET /users/me`` (the catalog's reads
    take their connection the same way, for the same reason)."""
    connect: ReadConnect = request.app.state.read_engine.connect
    return connect
