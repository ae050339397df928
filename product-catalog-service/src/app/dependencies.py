"""The dependencies routes declare, named once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from common_libs.db import get_read_engine
from common_libs.pagination import PageQuery
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db.session import get_db_connection
from app.services.reservation_manager import TtlPolicy


async def get_ttl_policy(request: Request) -> TtlPolicy:
    """The reservation TTL policy built from the settings at start-up."""
    policy: TtlPolicy = request.app.state.ttl_policy
    return policy


# scope="function": the transaction commits before the response is sent, so a client never sees
# a success for a write that then fails to commit.
DbConnection = Annotated[AsyncConnection, Depends(get_db_connection, scope="function")]
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]
ReservationTtl = Annotated[TtlPolicy, Depends(get_ttl_policy)]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
ServicePrincipal = Annotated[Principal, Depends(require_roles("service"))]

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "DbConnection",
    "PageQuery",
    "ReadEngine",
    "ReservationTtl",
    "ServicePrincipal",
    "Settings",
]
