"""Every query on ``refresh_tokens``; a token is consumed by one conditional UPDATE."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import RefreshToken

__all__ = [
    "ConsumedRefreshToken",
    "RefreshTokenState",
    "consume_refresh_token",
    "delete_expired_refresh_tokens",
    "find_refresh_token",
    "insert_refresh_token",
    "revoke_family",
    "revoke_user_refresh_tokens",
]


@dataclass(frozen=True, slots=True)
class ConsumedRefreshToken:
    """What a successful rotation needs from the token it used up."""

    family_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RefreshTokenState:
    """A stored token as found by its hash, whatever its state."""

    family_id: uuid.UUID
    user_id: uuid.UUID
    used_at: datetime | None
    revoked_at: datetime | None


async def insert_refresh_token(
    session: AsyncSession,
    *,
    token_hash: bytes,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Store a new token (its hash only)."""
    await session.execute(
        insert(RefreshToken).values(
            id=uuid.uuid4(),
            token_hash=token_hash,
            family_id=family_id,
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def consume_refresh_token(
    session: AsyncSession, *, token_hash: bytes, now: datetime
) -> ConsumedRefreshToken | None:
    """Mark a live token used and return it; None when it is unknown, used, revoked or expired.

    One conditional UPDATE: of two concurrent uses of the same token, exactly one succeeds.
    """
    statement = (
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.family_id, RefreshToken.user_id)
    )
    row = (await session.execute(statement)).one_or_none()
    return ConsumedRefreshToken(*row) if row is not None else None


async def find_refresh_token(session: AsyncSession, token_hash: bytes) -> RefreshTokenState | None:
    """The stored token with this hash, or None."""
    statement = select(
        RefreshToken.family_id, RefreshToken.user_id, RefreshToken.used_at, RefreshToken.revoked_at
    ).where(RefreshToken.token_hash == token_hash)
    row = (await session.execute(statement)).one_or_none()
    return RefreshTokenState(*row) if row is not None else None


async def revoke_family(session: AsyncSession, *, family_id: uuid.UUID, now: datetime) -> int:
    """Revoke every live token of a family; return how many were revoked."""
    statement = (
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def revoke_user_refresh_tokens(
    session: AsyncSession, *, user_id: uuid.UUID, now: datetime
) -> int:
    """Revoke every live token of a user; return how many were revoked."""
    statement = (
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_expired_refresh_tokens(
    session: AsyncSession, *, now: datetime, batch_size: int = 1000
) -> int:
    """Delete up to ``batch_size`` expired tokens (short statements; call again while > 0)."""
    expired = (
        select(RefreshToken.id)
        .where(RefreshToken.expires_at <= now)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(delete(RefreshToken).where(RefreshToken.id.in_(expired)))
    return int(result.rowcount)  # type: ignore[attr-defined]
