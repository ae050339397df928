"""The dependencies routes declare, named once as ``Annotated`` aliases.

Routes name these aliases and nothing else: this module is the one place that reads what the
lifespan (:func:`app.main.lifespan`) stored on the application.
"""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from common_libs.db import get_read_engine
from common_libs.ratelimit import RateLimiter
from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db.session import get_db_connection
from app.services.settlement import OrderSettlement


async def get_settlement(request: Request) -> OrderSettlement:
    """The process's order settlement (built in the lifespan); a coroutine, so it runs on the
    event loop (a plain function would be sent to the thread pool on every request)."""
    settlement: OrderSettlement = request.app.state.settlement
    return settlement


_TOO_MANY_ORDERS = (
    "Too many orders: at most {quota} per {window_seconds} s for one user; "
    "try again in {reset_seconds} s."
)


async def _ordering_within_limit(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_roles("customer", "admin"))],
) -> Principal:
    """The caller who may place orders, counted against their limit (429 past it); the answer
    carries the ``RateLimit`` fields."""
    limiter: RateLimiter = request.app.state.order_limiter
    decision = await limiter.acquire(principal.subject, detail=_TOO_MANY_ORDERS)
    response.headers.update(decision.headers())
    return principal


# scope="function": the transaction commits before the response is sent, so a client never sees
# a success for a write that then fails to commit.
DbConnection = Annotated[AsyncConnection, Depends(get_db_connection, scope="function")]
# Requests that only read: the pool in autocommit, a connection taken for just their statements.
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
# Service tokens may read but not place orders; each order placed counts against the caller's
# limit (ORDERS_PLACE_ORDER_LIMIT per ORDERS_PLACE_ORDER_WINDOW_SECONDS).
OrderingPrincipal = Annotated[Principal, Depends(_ordering_within_limit)]
# Placing and cancelling orders: the steps that talk to the catalog between short commits.
Settlement = Annotated[OrderSettlement, Depends(get_settlement)]

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "DbConnection",
    "OrderingPrincipal",
    "ReadEngine",
    "Settings",
    "Settlement",
]
