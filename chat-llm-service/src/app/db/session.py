"""The service's engine and the request's session (SQLAlchemy's ORM on asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from common_libs.db import engine_from_settings
from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings

# The catalog read model's search (app.db.catalog_repository) takes a name word as close to a
# misspelled term from this word similarity on: pg_trgm's default, 0.6, misses "headphnoes" for
# "Headphones" (0.55). Sent in each connection's start-up packet: no statement, no round trip.
SERVER_SETTINGS = {"pg_trgm.word_similarity_threshold": "0.5"}


def _add_server_settings(
    dialect: Any, record: Any, arguments: Any, parameters: dict[str, Any]
) -> None:
    parameters["server_settings"] = {**parameters.get("server_settings", {}), **SERVER_SETTINGS}


def create_engine(settings: Settings) -> AsyncEngine:
    """The service's pool, sized by its settings; connections are opened lazily."""
    engine = engine_from_settings(settings)
    event.listen(engine.sync_engine, "do_connect", _add_server_settings)
    return engine


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session; commit when the handler returns, roll back when it raises."""
    # The same transaction block the chat turn's own short transactions use (sessions.begin()).
    async with request.app.state.sessionmaker.begin() as session:
        yield session
