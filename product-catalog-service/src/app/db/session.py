"""The service's engine and the request's connection (SQLAlchemy Core on asyncpg).

Every query here is a Core statement on an ``AsyncConnection``; the transaction idioms are
common-libs':

- ``get_db_connection``: the request's transaction, committed when the handler returns.
- ``unit_of_work(engine)``: one short transaction of its own, for the sweeper and for the hot
  reservation routes, which skip the request dependency (see ``reservation_routes``).
"""

from __future__ import annotations

from common_libs.db import engine_from_settings, get_db_connection, unit_of_work
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

__all__ = ["create_engine", "get_db_connection", "unit_of_work"]


def create_engine(settings: Settings) -> AsyncEngine:
    """The service's pool, sized by its settings; connections are opened lazily."""
    return engine_from_settings(settings)
