"""The dependencies routes declare, named once as ``Annotated`` aliases.

Each is ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per
request for what is only an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from common_libs.auth import CurrentPrincipal, Principal, require_roles
from common_libs.problem_types import (
    AUTHENTICATION_REQUIRED,
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    ProblemType,
)
from common_libs.ratelimit import RateLimiter
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.session import ReadConnect, get_db_session, get_read_connect
from app.security.passwords import PasswordHashing
from app.security.signing_keys import KeyRing
from app.security.tokens import TokenIssuer


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _passwords(request: Request) -> PasswordHashing:
    passwords: PasswordHashing = request.app.state.passwords
    return passwords


async def _tokens(request: Request) -> TokenIssuer:
    tokens: TokenIssuer = request.app.state.tokens
    return tokens


async def _login_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.login_limiter
    return limiter


async def _keys(request: Request) -> KeyRing:
    keys: KeyRing = request.app.state.keys
    return keys


# scope="function": the session commits before the response is sent, so a client never sees a
# success for a write that then fails to commit.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
# A request that only reads: ``async with connect() as db``, a pooled connection in autocommit
# (its statement without BEGIN and COMMIT).
DbReader = Annotated[ReadConnect, Depends(get_read_connect)]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
AppSettings = Annotated[Settings, Depends(_settings)]
Passwords = Annotated[PasswordHashing, Depends(_passwords)]
Tokens = Annotated[TokenIssuer, Depends(_tokens)]
Keys = Annotated[KeyRing, Depends(_keys)]
# Failed logins per account (USERS_LOGIN_FAILURE_LIMIT per USERS_LOGIN_FAILURE_WINDOW_SECONDS).
LoginLimiter = Annotated[RateLimiter, Depends(_login_limiter)]

# The problems the principal dependencies answer, for the routes' documented responses: no token
# (the bare challenge), a token refused, an expired one; and a role that may not.
CURRENT_PRINCIPAL_PROBLEMS: tuple[ProblemType, ...] = (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
)
ADMIN_PRINCIPAL_PROBLEMS: tuple[ProblemType, ...] = (
    *CURRENT_PRINCIPAL_PROBLEMS,
    INSUFFICIENT_SCOPE,
)

__all__ = [
    "ADMIN_PRINCIPAL_PROBLEMS",
    "CURRENT_PRINCIPAL_PROBLEMS",
    "AdminPrincipal",
    "AppSettings",
    "CurrentPrincipal",
    "DbReader",
    "DbSession",
    "Keys",
    "LoginLimiter",
    "Passwords",
    "Settings",
    "Tokens",
]
