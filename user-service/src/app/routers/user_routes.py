"""``/users``: registration, the caller's own account, and admin reads."""

from __future__ import annotations

import uuid

from common_libs.pagination import Page, PageQuery
from common_libs.problems import problem_responses
from fastapi import APIRouter, Response, status

from app.dependencies import AdminPrincipal, CurrentPrincipal, DbSession, Passwords
from app.models.user_models import UserCreate, UserOut, UserUpdate
from app.services import user_manager

router = APIRouter(prefix="/users", tags=["users"])

_PROBLEMS = {404: "No such user, or one that belongs to someone else."}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(
        400, 409, 422, descriptions={409: "The email is already registered (in any letter case)."}
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
    responses=problem_responses(401, 404, descriptions=_PROBLEMS),
    summary="Your account",
)
async def read_me(session: DbSession, principal: CurrentPrincipal) -> UserOut:
    """The caller's account."""
    return await user_manager.get_own_user(session=session, principal=principal)


@router.patch(
    "/me",
    response_model=UserOut,
    responses=problem_responses(
        400,
        401,
        403,
        404,
        422,
        descriptions={**_PROBLEMS, 403: "`current_password` is missing or wrong."},
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
    responses=problem_responses(401, 404, descriptions=_PROBLEMS),
    summary="Delete your account",
)
async def delete_me(session: DbSession, principal: CurrentPrincipal) -> None:
    """Delete the caller's account and its refresh tokens."""
    await user_manager.delete_own_user(session=session, principal=principal)


@router.get(
    "/{user_id}",
    response_model=UserOut,
    responses=problem_responses(401, 404, 422, descriptions=_PROBLEMS),
    summary="A user (yourself, or anyone for an admin)",
)
async def read_user(user_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> UserOut:
    """One user; anyone but yourself answers 404 unless you are an admin."""
    return await user_manager.get_user(session=session, principal=principal, user_id=user_id)


@router.get(
    "",
    response_model=Page[UserOut],
    responses=problem_responses(401, 403, 422),
    summary="All users, newest first (admin)",
)
async def list_users(session: DbSession, _: AdminPrincipal, page: PageQuery) -> Page[UserOut]:
    """A page of users; pass ``next_cursor`` back as ``cursor`` for the next one."""
    return await user_manager.list_users(session=session, page=page)
