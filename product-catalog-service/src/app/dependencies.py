"""The dependencies routes declare, named once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from common_libs.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageParams, decode_cursor
from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.config import Settings
from app.db.session import get_db_session
from app.services.reservation_manager import TtlPolicy

# scope="function": the session commits before the response is sent, so a client never sees a
# success for a write that then fails to commit.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_db_connection(session: DbSession) -> AsyncConnection:
    """The connection of the request's session: its transaction commits after the handler."""
    return await session.connection()


async def get_read_engine(request: Request) -> AsyncEngine:
    """The pool in autocommit mode, for single-statement reads: no BEGIN/COMMIT round trips.

    Read managers take a connection from it for just their statement. A yield dependency handing
    out the connection cost a quarter of the CPU of a ``GET /products/{id}`` (FastAPI enters an
    anyio cancel scope for it, which is expensive in each request's fresh task).
    """
    engine: AsyncEngine = request.app.state.read_engine
    return engine


async def get_page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size (1..100).")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=1024, description="Opaque cursor from the previous page."),
    ] = None,
) -> PageParams:
    """common-libs' ``PageQuery`` as a coroutine (a plain function would run in the thread pool)."""
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


async def get_ttl_policy(request: Request) -> TtlPolicy:
    """The reservation TTL policy built from the settings at start-up."""
    policy: TtlPolicy = request.app.state.ttl_policy
    return policy


DbConnection = Annotated[AsyncConnection, Depends(get_db_connection)]
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]
ReservationTtl = Annotated[TtlPolicy, Depends(get_ttl_policy)]
PageQuery = Annotated[PageParams, Depends(get_page_params)]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
ServicePrincipal = Annotated[Principal, Depends(require_roles("service"))]

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "DbConnection",
    "DbSession",
    "PageQuery",
    "ReadEngine",
    "ReservationTtl",
    "ServicePrincipal",
    "Settings",
]
