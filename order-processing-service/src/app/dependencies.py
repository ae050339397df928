"""The dependencies routes declare, named once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.db.session import get_db_connection
from app.services.order_saga import OrderSaga


async def get_order_saga(request: Request) -> OrderSaga:
    """The process's order saga (built in the lifespan); a coroutine, so it runs on the event
    loop (a plain function would be sent to the thread pool on every request)."""
    saga: OrderSaga = request.app.state.order_saga
    return saga


# scope="function": the transaction commits before the response is sent, so a client never sees
# a success for a write that then fails to commit.
DbConnection = Annotated[AsyncConnection, Depends(get_db_connection, scope="function")]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
# Service tokens may read but not place orders.
OrderingPrincipal = Annotated[Principal, Depends(require_roles("customer", "admin"))]
Saga = Annotated[OrderSaga, Depends(get_order_saga)]

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "DbConnection",
    "OrderingPrincipal",
    "Saga",
    "Settings",
]
