"""One statement through asyncpg itself, on a connection of the service's SQLAlchemy pool.

For the statements a chat turn runs before it calls the model (the grounding search, the quota
hold): SQLAlchemy's execution layer (execution context, parameter and result processing) costs
about 0.2-0.3 ms of CPU per statement on top of asyncpg's own work on the shared 2-core machine,
and those statements sit right on the time to first token. The connection still comes from (and
returns to) the pool, so the pool's size and its idle-only ping hold as for every other query.

A statement run here outside a transaction that SQLAlchemy began is a transaction of its own
(PostgreSQL's implicit one): SQLAlchemy begins a transaction only when it executes something
itself, and returns the connection to the pool with nothing to roll back.
"""

from __future__ import annotations

from typing import Any, cast

import anyio
import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["DriverFailed", "fetch"]

DriverFailed = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
"""What asyncpg raises when a statement fails or its connection does (SQLAlchemy does not wrap
these: a statement run here raises them as they are). ``InternalClientError``: a connection that
the server closed while asyncpg had not noticed yet can fail with it."""


async def fetch(connection: AsyncConnection, statement: str, *arguments: Any) -> list[Any]:
    """The rows (``asyncpg.Record``) of ``statement`` with its ``$n`` arguments.

    When the connection itself failed (it broke, or the call was cancelled midway), it is
    invalidated, as SQLAlchemy does with a connection that fails under its own statements: the
    pool discards it instead of handing it out again. An error PostgreSQL reports for the
    statement leaves a working connection.
    """
    pooled = await connection.get_raw_connection()
    driver: Any = pooled.driver_connection  # an asyncpg.Connection (asyncpg has no type hints)
    try:
        return cast(list[Any], await driver.fetch(statement, *arguments))
    except BaseException as exc:
        if not isinstance(exc, asyncpg.PostgresError) or driver.is_closed():
            with anyio.CancelScope(shield=True):
                await connection.invalidate(exc if isinstance(exc, Exception) else None)
        raise
