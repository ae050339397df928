"""The service's engine, the request's connection and the saga's unit of work.

Requests and the saga use SQLAlchemy Core on an ``AsyncConnection``: every query here is a Core
statement, and the ORM session's unit-of-work machinery cost about a fifth of the CPU of placing
an order without adding anything to it. The two transaction idioms are common-libs':

- ``get_db_connection``: the request's transaction, committed when the handler returns.
- ``unit_of_work(engine)``: one short transaction of its own, the documented exception to "the
  request's transaction commits". The order saga must make the ``pending`` order durable BEFORE
  it calls the catalog (so that a crash leaves a row the reconciler finds), and confirm or fail
  it in a separate short transaction afterwards. Every such commit goes through it.
"""

from __future__ import annotations

from common_libs.db import engine_from_settings, get_db_connection, unit_of_work
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

__all__ = ["create_engine", "get_db_connection", "unit_of_work"]


def create_engine(settings: Settings) -> AsyncEngine:
    """The service's pool, sized by its settings; connections are opened lazily."""
    return engine_from_settings(settings)
