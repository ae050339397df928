"""The dependencies routes declare, named once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from common_libs.db import get_read_engine
from common_libs.problem_types import (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    SERVICE_UNAVAILABLE,
    TOKEN_EXPIRED,
    ProblemType,
)
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings
from app.db.session import get_db_session
from app.services.context import ChatServices

# scope="function": the session commits before the response is sent, so a client never sees a
# success for a write that then fails to commit.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
# Requests that only read: the pool in autocommit, a connection taken for just their statements.
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]


# Both are ``async def`` though they do no I/O: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hop to a worker thread and back on every request.
async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_chat_services(request: Request) -> ChatServices:
    """The chat collaborators made in the lifespan."""
    services: ChatServices = request.app.state.chat_services
    return services


async def get_access_token(request: Request, principal: CurrentPrincipal) -> str:
    """The caller's access token, once verified (``principal``): the order tools forward it to
    order-processing-service, so the assistant can see only what the caller may see."""
    _scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip()


# What ``CurrentPrincipal`` answers, for the routes' documented responses: no token (the bare
# challenge), a token refused, an expired one (401), and user-service's keys out of reach (503).
CURRENT_PRINCIPAL_PROBLEMS: tuple[ProblemType, ...] = (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    SERVICE_UNAVAILABLE,
)

AppSettings = Annotated[Settings, Depends(get_app_settings)]
AccessToken = Annotated[str, Depends(get_access_token)]
ChatDeps = Annotated[ChatServices, Depends(get_chat_services)]

__all__ = [
    "CURRENT_PRINCIPAL_PROBLEMS",
    "AccessToken",
    "AdminPrincipal",
    "AppSettings",
    "ChatDeps",
    "CurrentPrincipal",
    "DbSession",
    "ReadEngine",
    "Settings",
]
