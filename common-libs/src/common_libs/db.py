"""The database helpers every service uses alike (install ``common-libs[db]``).

- :func:`create_engine`: the asyncpg pool with the idle-only ping.
- :func:`engine_from_settings`: the same, sized by a service's ``database_*`` settings.
- :func:`ping_database`: the readiness check.
- :func:`unit_of_work`: an explicit short transaction of its own (Core, on an ``AsyncConnection``).
- :func:`get_db_connection`: the request's transaction as a FastAPI dependency.
- :func:`read_only_engine` and :func:`get_read_engine`: the same pool in autocommit, for requests
  that only read (no BEGIN and COMMIT round trips), and the dependency that hands it out.
- :func:`driver_fetch`: one statement through asyncpg itself on a pooled connection (hot reads),
  with :data:`DRIVER_ERRORS`, what it raises.
- :data:`NAMING_CONVENTION`: deterministic constraint names for every service's ``MetaData``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, cast

import anyio
import asyncpg  # type: ignore[import-untyped]
from pydantic import SecretStr
from sqlalchemy import event, exc, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from starlette.requests import Request

from common_libs.telemetry import trace_statements

__all__ = [
    "DRIVER_ERRORS",
    "NAMING_CONVENTION",
    "DatabaseSettings",
    "create_engine",
    "driver_fetch",
    "engine_from_settings",
    "get_db_connection",
    "get_read_engine",
    "ping_database",
    "read_only_engine",
    "unit_of_work",
]

# Deterministic constraint names, so that migrations can refer to (and drop) them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_CHECKED_IN_AT = "checked_in_at"
_PoolListener = Callable[[Any, ConnectionPoolEntry, Any], None]


class DatabaseSettings(Protocol):
    """The settings fields every service names alike (``<PREFIX>_DATABASE_URL`` and so on)."""

    @property
    def database_url(self) -> SecretStr: ...

    @property
    def database_pool_size(self) -> int: ...

    @property
    def database_max_overflow(self) -> int: ...

    @property
    def database_idle_ping_seconds(self) -> float: ...


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_when_idle(threshold_seconds: float) -> _PoolListener:
    """A checkout listener that pings only connections idle for over ``threshold_seconds``.

    ``pool_pre_ping`` pings on every checkout: with asyncpg that is BEGIN, a query and ROLLBACK,
    three round trips before every transaction's own statements (about a third of a catalog
    ``GET /products/{id}``). A connection in steady use is proven by its last use; one that sat
    idle (across a database restart, say) is checked, and the pool replaces it when the check
    fails (``DisconnectionError``: the pool discards the connection and checks out another, see
    SQLAlchemy's "Disconnect Handling - Pessimistic").
    """

    def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle = time.monotonic() - record.info.get(_CHECKED_IN_AT, time.monotonic())
        if idle >= threshold_seconds:
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise exc.DisconnectionError from error

    return ping_if_idle


def _failed_connect_is_a_disconnect(context: ExceptionContext) -> None:
    """A connection PostgreSQL refused reads like one that was lost (``connection_invalidated``):
    the database is unavailable, whatever it said (not accepting connections, too many clients,
    starting up). A network failure to connect arrives as the ``OSError`` it is."""
    if context.connection is None and not context.is_pre_ping:
        context.is_disconnect = True


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    idle_ping_seconds: float = 10.0,
    hide_parameters: bool = True,
) -> AsyncEngine:
    """Create a connection pool (asyncpg) that pings only connections that sat idle; opens lazily.

    ``hide_parameters`` (on by default) keeps statement parameters out of errors and logs: they
    hold people's data (a shipping address) and secrets' hashes.

    The pool hands out the connection returned last (LIFO): under light load the same few
    connections serve every request, with their prepared statements and PostgreSQL's settled
    plans for them (the first five executions of a prepared statement on a connection are
    planned afresh), and the others stay idle rather than each taking turns.

    Each statement is a client span with the statement's text, never its parameters
    (:func:`~common_libs.telemetry.trace_statements`).

    PostgreSQL refusing a connection (a database that does not accept connections, too many
    clients, starting up) is a ``DBAPIError`` with ``connection_invalidated``, as a connection
    lost midway is: what the problem handlers answer ``503`` to (:mod:`common_libs.db_errors`).
    """
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        hide_parameters=hide_parameters,
        pool_use_lifo=True,
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _note_checkin)
    event.listen(pool, "checkout", _ping_when_idle(idle_ping_seconds))
    event.listen(engine.sync_engine, "handle_error", _failed_connect_is_a_disconnect)
    trace_statements(engine)
    return engine


def engine_from_settings(
    settings: DatabaseSettings, *, hide_parameters: bool = True
) -> AsyncEngine:
    """Create a service's pool from its ``database_*`` settings (see :func:`create_engine`)."""
    return create_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        idle_ping_seconds=settings.database_idle_ping_seconds,
        hide_parameters=hide_parameters,
    )


async def ping_database(engine: AsyncEngine) -> None:
    """Run ``SELECT 1``; raises when the database does not answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def unit_of_work(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """One short transaction of its own: commits when the block ends, rolls back when it raises.

    For the documented exceptions to "the request's transaction commits": work that must be
    durable before a call to another service (the order saga), background jobs, and hot routes
    that skip the request dependency. It is ``engine.begin()`` under the name every service
    reads, with no wrapper of its own on the hot paths.
    """
    return engine.begin()


async def get_db_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """The request's connection in a transaction on ``app.state.engine``: committed when the
    handler returns, rolled back when it raises.

    Declare it with ``Depends(get_db_connection, scope="function")`` so that the commit happens
    before the response is sent: a client never sees a success for a write that failed to commit.
    """
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as connection:
        yield connection


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine``'s pool in autocommit, for requests that only read (the lifespan keeps it as
    ``app.state.read_engine``): each statement is a transaction of its own, so a read costs its
    round trips to PostgreSQL and no BEGIN and COMMIT. The pool puts a connection back in its
    usual isolation level when it is returned, so a later writer gets a transaction as always.
    Two statements on one of its connections do not share a snapshot: read that way only what a
    commit in between cannot make inconsistent."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def get_read_engine(request: Request) -> AsyncEngine:
    """``app.state.read_engine`` (:func:`read_only_engine`), as a dependency: the read takes a
    connection for just its statements (``async with engine.connect()``). Not a yield dependency
    handing out the connection: FastAPI enters an anyio cancel scope for each of those, a quarter
    of the CPU of the catalog's ``GET /products/{id}``."""
    engine: AsyncEngine = request.app.state.read_engine
    return engine


DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
"""What :func:`driver_fetch` raises when a statement or its connection fails (SQLAlchemy does not
wrap them). ``InternalClientError``: a connection the server closed while asyncpg had not
noticed yet can fail with it."""


async def driver_fetch(connection: AsyncConnection, statement: str, *arguments: Any) -> list[Any]:
    """The rows (``asyncpg.Record``) of ``statement`` with its ``$n`` arguments, run by asyncpg
    itself on ``connection`` (from the pool): no SQLAlchemy execution context, parameter or result
    processing, for the few hot statements where that costs more than the statement.

    Outside a transaction SQLAlchemy began, the statement is a transaction of its own. When the
    connection itself failed (the server ended it, or the call was cancelled midway and left it in
    the middle of an operation), it is invalidated, as SQLAlchemy does when a connection fails
    under its own statements: the pool discards it instead of handing it to the next request. An
    error PostgreSQL reports for the statement leaves a working connection.
    """
    pooled = await connection.get_raw_connection()
    driver: Any = pooled.driver_connection  # an asyncpg.Connection (asyncpg has no type hints)
    try:
        return cast(list[Any], await driver.fetch(statement, *arguments))
    except BaseException as error:
        if not isinstance(error, asyncpg.PostgresError) or driver.is_closed():
            with anyio.CancelScope(shield=True):
                await connection.invalidate(error if isinstance(error, Exception) else None)
        raise
