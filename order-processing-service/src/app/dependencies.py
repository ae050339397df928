"""The dependencies routes declare, named once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.session import get_db_session

# scope="function": the session commits before the response is sent, so a client never sees a
# success for a write that then fails to commit.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]

__all__ = ["AdminPrincipal", "CurrentPrincipal", "DbSession", "Settings"]
