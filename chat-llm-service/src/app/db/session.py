"""The service's engine and the request's session (SQLAlchemy's ORM on asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from common_libs.db import engine_from_settings
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """The service's pool, sized by its settings; connections are opened lazily."""
    return engine_from_settings(settings)


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session; commit when the handler returns, roll back when it raises."""
    # The same transaction block the chat turn's own short transactions use (sessions.begin()).
    async with request.app.state.sessionmaker.begin() as session:
        yield session
