"""The dependencies routes declare, named once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.session import get_db_session
from app.services.order_saga import OrderSaga


def get_order_saga(request: Request) -> OrderSaga:
    """The process's order saga (built in the lifespan)."""
    saga: OrderSaga = request.app.state.order_saga
    return saga


# scope="function": the session commits before the response is sent, so a client never sees a
# success for a write that then fails to commit.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
# Service tokens may read but not place orders.
OrderingPrincipal = Annotated[Principal, Depends(require_roles("customer", "admin"))]
Saga = Annotated[OrderSaga, Depends(get_order_saga)]

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "DbSession",
    "OrderingPrincipal",
    "Saga",
    "Settings",
]
