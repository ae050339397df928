"""Every query on ``users``; single statements, so that concurrent requests cannot race."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from common_libs.db import driver_fetch
from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Reader
from app.db.tables import User

_COLUMNS = (User.id, User.email, User.full_name, User.role, User.created_at, User.password_hash)
# The hottest read (every GET /users/me): SQLAlchemy's statement on the table's columns,
# compiled once for asyncpg, run by ``get_user`` on the driver itself.
_users = User.__table__.c
_BY_ID_SQL = str(
    select(*(_users[column.key] for column in _COLUMNS))
    .where(_users.id == bindparam("user_id"))
    .compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
)


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A row of ``users`` (the password hash never leaves the service)."""

    id: uuid.UUID
    email: str
    full_name: str
    role: str
    created_at: datetime
    password_hash: str


async def insert_user(
    session: AsyncSession,
    *,
    email: str,
    email_normalized: str,
    full_name: str,
    role: str,
    password_hash: str,
) -> UserRecord | None:
    """Insert a user; None when the normalised email is taken (no check-then-insert race)."""
    statement = (
        pg_insert(User)
        .values(
            id=uuid.uuid4(),
            email=email,
            email_normalized=email_normalized,
            full_name=full_name,
            role=role,
            password_hash=password_hash,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[User.email_normalized])
        .returning(*_COLUMNS)
    )
    row = (await session.execute(statement)).one_or_none()
    return UserRecord(*row) if row is not None else None


async def get_user(db: Reader, user_id: uuid.UUID) -> UserRecord | None:
    """The user with this id, or None.

    Run by asyncpg itself (common-libs' ``driver_fetch``), as the catalog runs its hottest read:
    the row's types are already what ``UserRecord`` holds, so SQLAlchemy's execution context and
    result processing have nothing to add. In a session, on the session's connection (inside its
    transaction).
    """
    connection = await db.connection() if isinstance(db, AsyncSession) else db
    rows = await driver_fetch(connection, _BY_ID_SQL, user_id)
    return UserRecord(*rows[0]) if rows else None


async def get_user_by_email(session: AsyncSession, email_normalized: str) -> UserRecord | None:
    """The user with this normalised email, or None."""
    statement = select(*_COLUMNS).where(User.email_normalized == email_normalized)
    row = (await session.execute(statement)).one_or_none()
    return UserRecord(*row) if row is not None else None


async def update_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    full_name: str | None = None,
    password_hash: str | None = None,
) -> UserRecord | None:
    """Change the given fields; None when the user does not exist (any more)."""
    values: dict[str, object] = {"updated_at": datetime.now(UTC)}
    if full_name is not None:
        values["full_name"] = full_name
    if password_hash is not None:
        values["password_hash"] = password_hash
    statement = update(User).where(User.id == user_id).values(**values).returning(*_COLUMNS)
    row = (await session.execute(statement)).one_or_none()
    return UserRecord(*row) if row is not None else None


async def replace_password_hash(
    session: AsyncSession, user_id: uuid.UUID, *, old_hash: str, new_hash: str
) -> bool:
    """Swap a hash for its upgrade, unless the password changed meanwhile."""
    statement = (
        update(User)
        .where(User.id == user_id, User.password_hash == old_hash)
        .values(password_hash=new_hash)
        .returning(User.id)
    )
    return (await session.execute(statement)).one_or_none() is not None


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Delete a user (its refresh tokens go with it); False when it did not exist."""
    statement = delete(User).where(User.id == user_id).returning(User.id)
    return (await session.execute(statement)).one_or_none() is not None


async def list_users(
    db: Reader,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[UserRecord]:
    """Up to ``limit`` users, newest first, strictly after the keyset position ``before``."""
    statement = select(*_COLUMNS).order_by(User.created_at.desc(), User.id.desc()).limit(limit)
    if before is not None:
        statement = statement.where(tuple_(User.created_at, User.id) < tuple_(*before))
    rows = (await db.execute(statement)).all()
    return [UserRecord(*row) for row in rows]


__all__ = [
    "UserRecord",
    "delete_user",
    "get_user",
    "get_user_by_email",
    "insert_user",
    "list_users",
    "replace_password_hash",
    "update_user",
]
