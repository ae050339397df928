"""Account rules: registration, reading, updating and deleting users, the admin bootstrap.

Every account created or deleted writes its event (``app.events``) in the same transaction as the
change: an event is published for a committed change only, and never lost for one.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from common_libs.auth import Principal
from common_libs.events import DeletedData, write_event
from common_libs.pagination import InvalidCursor, Page, PageParams, encode_cursor
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import refresh_token_repository, user_repository
from app.db.session import ReadConnect
from app.db.user_repository import UserRecord
from app.events import USER_DELETED, USER_REGISTERED, UserEventData
from app.models.email_address import normalize_email
from app.models.user_models import UserCreate, UserOut, UserUpdate
from app.security.passwords import PasswordHashing
from app.services.errors import EmailAlreadyRegistered, UserNotFound, WrongCurrentPassword

_logger = logging.getLogger(__name__)


def _out(record: UserRecord) -> UserOut:
    return UserOut.model_validate(record)


async def _write_registered(session: AsyncSession, record: UserRecord) -> None:
    """``users.user.registered`` for an account this transaction created."""
    data = UserEventData.model_validate(record, from_attributes=True)
    await write_event(await session.connection(), USER_REGISTERED, record.id, data)


def _own_id(principal: Principal) -> uuid.UUID:
    """The caller's user id; service principals (and odd subjects) are no user."""
    if principal.is_service:
        raise UserNotFound
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        raise UserNotFound from None


async def register_user(
    *, session: AsyncSession, passwords: PasswordHashing, data: UserCreate
) -> UserOut:
    """Create a customer; ``EmailAlreadyRegistered`` when the email is taken in any case."""
    record = await user_repository.insert_user(
        session,
        email=data.email,
        email_normalized=normalize_email(data.email),
        full_name=data.full_name,
        role="customer",
        password_hash=await passwords.hash(data.password),
    )
    if record is None:
        raise EmailAlreadyRegistered
    await _write_registered(session, record)
    return _out(record)


async def get_own_user(*, connect: ReadConnect, principal: Principal) -> UserOut:
    """The caller's own account."""
    async with connect() as db:
        record = await user_repository.get_user(db, _own_id(principal))
    if record is None:
        raise UserNotFound
    return _out(record)


async def get_user(*, connect: ReadConnect, principal: Principal, user_id: uuid.UUID) -> UserOut:
    """A user the caller may see: itself, or anyone for an admin (others look missing)."""
    if not principal.is_admin and (principal.is_service or principal.subject != str(user_id)):
        raise UserNotFound
    async with connect() as db:
        record = await user_repository.get_user(db, user_id)
    if record is None:
        raise UserNotFound
    return _out(record)


async def update_own_user(
    *, session: AsyncSession, passwords: PasswordHashing, principal: Principal, data: UserUpdate
) -> UserOut:
    """Change the caller's name and/or password; a new password revokes its refresh tokens."""
    user_id = _own_id(principal)
    current = await user_repository.get_user(session, user_id)
    if current is None:
        raise UserNotFound
    new_hash = None
    if data.password is not None:
        if data.current_password is None or not await passwords.verify(
            current.password_hash, data.current_password
        ):
            raise WrongCurrentPassword
        new_hash = await passwords.hash(data.password)
        await refresh_token_repository.revoke_user_refresh_tokens(
            session, user_id=user_id, now=datetime.now(UTC)
        )
    record = await user_repository.update_user(
        session, user_id, full_name=data.full_name, password_hash=new_hash
    )
    if record is None:
        raise UserNotFound
    return _out(record)


async def delete_own_user(*, session: AsyncSession, principal: Principal) -> None:
    """Delete the caller's account; its refresh tokens are deleted with it.

    The only way an account is deleted: the refresh-token purge deletes tokens, never accounts.
    """
    user_id = _own_id(principal)
    if not await user_repository.delete_user(session, user_id):
        raise UserNotFound
    await write_event(await session.connection(), USER_DELETED, user_id, DeletedData(id=user_id))


def _keyset(cursor: dict[str, object] | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        created_at = datetime.fromisoformat(str(cursor["created_at"]))
        user_id = uuid.UUID(str(cursor["id"]))
        if created_at.tzinfo is None:
            raise InvalidCursor
        return created_at.astimezone(UTC), user_id
    except (KeyError, ValueError, OverflowError):
        raise InvalidCursor from None


async def list_users(*, connect: ReadConnect, page: PageParams) -> Page[UserOut]:
    """One page of users, newest first, keyset-paginated on ``(created_at, id)``."""
    before = _keyset(page.cursor)
    async with connect() as db:
        records = await user_repository.list_users(db, limit=page.limit + 1, before=before)
    items, more = records[: page.limit], len(records) > page.limit
    next_cursor = None
    if more:
        last = items[-1]
        next_cursor = encode_cursor({"created_at": last.created_at.isoformat(), "id": str(last.id)})
    return Page[UserOut](items=[_out(record) for record in items], next_cursor=next_cursor)


async def ensure_admin(
    *,
    session: AsyncSession,
    passwords: PasswordHashing,
    email: str,
    password: str,
    full_name: str,
) -> bool:
    """Create the configured admin when no account has its email; True when this call did.

    Safe when several replicas start at once (one conditional INSERT). An existing account with
    that email is left alone, even a customer: promoting it would hand admin rights to whoever
    registered the address first. Only the replica whose INSERT created it writes the event.
    """
    normalized = normalize_email(email)
    existing = await user_repository.get_user_by_email(session, normalized)
    if existing is not None:
        if existing.role != "admin":
            _logger.warning("the configured admin email belongs to a customer; not promoted")
        return False
    created = await user_repository.insert_user(
        session,
        email=email,
        email_normalized=normalized,
        full_name=full_name,
        role="admin",
        password_hash=await passwords.hash(password),
    )
    if created is None:
        return False
    await _write_registered(session, created)
    _logger.info("created the configured admin account")
    return True
