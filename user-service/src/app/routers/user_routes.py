"""``/users``: registration, the caller's own account, and admin reads."""

from __future__ import annotations

import uuid

from common_libs.pagination import Page, PageQuery
from common_libs.problem_types import (
    INVALID_CURSOR,
    MALFORMED_REQUEST,
    SERVICE_UNAVAILABLE,
    VALIDATION_FAILED,
)
from common_libs.problems import ProblemSpec, problem_responses
from fastapi import APIRouter, Response, status

from app.dependencies import (
    ADMIN_PRINCIPAL_PROBLEMS,
    CURRENT_PRINCIPAL_PROBLEMS,
    AdminPrincipal,
    CurrentPrincipal,
    DbReader,
    DbSession,
    Passwords,
)
from app.models.user_models import UserCreate, UserOut, UserUpdate
from app.services import user_manager
from app.services.errors import EmailAlreadyRegistered, UserNotFound, WrongCurrentPassword

router = APIRouter(prefix="/users", tags=["users"])

_PROBLEMS = {
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`, with "
    '`error="invalid_token"` and an `error_description` when a token was sent).',
    404: "No such user, or one that belongs to someone else.",
}
# A route with a body may find it unreadable or invalid; every route here needs the database.
_BODY_PROBLEMS = (MALFORMED_REQUEST, VALIDATION_FAILED)
_CALLER_PROBLEMS: tuple[ProblemSpec, ...] = (
    *CURRENT_PRINCIPAL_PROBLEMS,
    UserNotFound,
    SERVICE_UNAVAILABLE,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(
        *_BODY_PROBLEMS,
        EmailAlreadyRegistered,
        SERVICE_UNAVAILABLE,
        descriptions={409: "The email is already registered (in any letter case)."},
    ),
    summary="Register a customer account",
)
async def register_user(
    body: UserCreate, session: DbSession, passwords: Passwords, response: Response
) -> UserOut:
    """Create a customer; the email must not be registered yet (in any letter case)."""
    user = await user_manager.register_user(session=session, passwords=passwords, data=body)
    response.headers["Location"] = f"/users/{user.id}"
    return user


@router.get(
    "/me",
    response_model=UserOut,
    responses=problem_responses(*_CALLER_PROBLEMS, descriptions=_PROBLEMS),
    summary="Your account",
)
async def read_me(connect: DbReader, principal: CurrentPrincipal) -> UserOut:
    """The caller's account."""
    return await user_manager.get_own_user(connect=connect, principal=principal)


@router.patch(
    "/me",
    response_model=UserOut,
    responses=problem_responses(
        *_BODY_PROBLEMS,
        *_CALLER_PROBLEMS,
        WrongCurrentPassword,
        descriptions={**_PROBLEMS, 403: "`current_password` is wrong."},
    ),
    summary="Change your name or password",
)
async def update_me(
    body: UserUpdate, session: DbSession, passwords: Passwords, principal: CurrentPrincipal
) -> UserOut:
    """Change the name and/or the password (403 when ``current_password`` is wrong)."""
    return await user_manager.update_own_user(
        session=session, passwords=passwords, principal=principal, data=body
    )


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*_CALLER_PROBLEMS, descriptions=_PROBLEMS),
    summary="Delete your account",
)
async def delete_me(session: DbSession, principal: CurrentPrincipal) -> None:
    """Delete the caller's account and its refresh tokens."""
    await user_manager.delete_own_user(session=session, principal=principal)


@router.get(
    "/{user_id}",
    response_model=UserOut,
    responses=problem_responses(*_CALLER_PROBLEMS, VALIDATION_FAILED, descriptions=_PROBLEMS),
    summary="A user (yourself, or anyone for an admin)",
)
async def read_user(user_id: uuid.UUID, connect: DbReader, principal: CurrentPrincipal) -> UserOut:
    """One user; anyone but yourself answers 404 unless you are an admin."""
    return await user_manager.get_user(connect=connect, principal=principal, user_id=user_id)


@router.get(
    "",
    response_model=Page[UserOut],
    responses=problem_responses(
        *ADMIN_PRINCIPAL_PROBLEMS,
        VALIDATION_FAILED,
        INVALID_CURSOR,
        SERVICE_UNAVAILABLE,
        descriptions={
            401: _PROBLEMS[401],
            403: 'Not an admin (`WWW-Authenticate: Bearer error="insufficient_scope"`).',
            422: "A bad `limit` (1..100) or a cursor not from a previous page.",
        },
    ),
    summary="All users, newest first (admin)",
)
async def list_users(connect: DbReader, _: AdminPrincipal, page: PageQuery) -> Page[UserOut]:
    """A page of users; pass ``next_cursor`` back as ``cursor`` for the next one."""
    return await user_manager.list_users(connect=connect, page=page)
