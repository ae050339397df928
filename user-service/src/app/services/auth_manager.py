"""Authentication rules: logins, client credentials, refresh-token rotation, logout, purging."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from common_libs.auth import Principal, Role
from common_libs.ratelimit import RateLimiter
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import refresh_token_repository, user_repository
from app.models.auth_models import ServiceToken, TokenForm, TokenPair
from app.models.email_address import normalize_email
from app.security.passwords import PasswordHashing
from app.security.tokens import TokenIssuer, hash_refresh_token, new_refresh_token
from app.services.errors import (
    InvalidClientCredentials,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenNotFound,
    RefreshTokenReused,
)


async def _start_pair(
    *,
    session: AsyncSession,
    tokens: TokenIssuer,
    user_id: uuid.UUID,
    role: Role,
    family_id: uuid.UUID,
) -> TokenPair:
    """Issue an access token and store a new refresh token of ``family_id``."""
    now = datetime.now(UTC)
    refresh_token = new_refresh_token()
    await refresh_token_repository.insert_refresh_token(
        session,
        token_hash=hash_refresh_token(refresh_token),
        family_id=family_id,
        user_id=user_id,
        now=now,
        expires_at=now + tokens.refresh_ttl,
    )
    access = tokens.issue_access_token(subject=str(user_id), role=role)
    return TokenPair(
        access_token=access.token, refresh_token=refresh_token, expires_in=access.expires_in
    )


def _role(value: str) -> Role:
    return "admin" if value == "admin" else "customer"


_TOO_MANY_FAILED_LOGINS = (
    "Too many failed logins for this username: at most {quota} per {window_seconds} s; "
    "try again in {reset_seconds} s."
)


async def login_with_password(
    *,
    session: AsyncSession,
    passwords: PasswordHashing,
    tokens: TokenIssuer,
    logins: RateLimiter,
    email: str,
    password: str,
) -> TokenPair:
    """The password grant: one Argon2 verification whether or not the account exists.

    Each attempt takes one of the username's failed-login allowance before the password is
    checked, so that concurrent guesses cannot all be checked before the count catches up; past
    it the attempt is refused unchecked (429, a correct password too) until the window ends. A
    successful login gives the allowance back. Known and unknown usernames count alike, so the
    answers say nothing about which exist.
    """
    username = normalize_email(email)
    attempt = await logins.acquire(username, detail=_TOO_MANY_FAILED_LOGINS)
    user = await user_repository.get_user_by_email(session, username)
    if user is None:
        await passwords.verify_dummy(password)
        raise InvalidCredentials(headers=attempt.headers())
    if not await passwords.verify(user.password_hash, password):
        raise InvalidCredentials(headers=attempt.headers())
    await logins.reset(username)
    if passwords.needs_rehash(user.password_hash):
        await user_repository.replace_password_hash(
            session, user.id, old_hash=user.password_hash, new_hash=await passwords.hash(password)
        )
    return await _start_pair(
        session=session,
        tokens=tokens,
        user_id=user.id,
        role=_role(user.role),
        family_id=uuid.uuid4(),
    )


async def login_service_client(
    *,
    passwords: PasswordHashing,
    tokens: TokenIssuer,
    clients: Mapping[str, SecretStr],
    client_id: str,
    client_secret: str,
) -> ServiceToken:
    """The client-credentials grant: a ``service`` token whose ``sub`` is the client id."""
    secret_hash = clients.get(client_id)
    if secret_hash is None:
        await passwords.verify_dummy(client_secret)
        raise InvalidClientCredentials
    if not await passwords.verify(secret_hash.get_secret_value(), client_secret):
        raise InvalidClientCredentials
    access = tokens.issue_access_token(subject=client_id, role="service")
    return ServiceToken(access_token=access.token, expires_in=access.expires_in)


async def grant_token(
    *,
    session: AsyncSession,
    passwords: PasswordHashing,
    tokens: TokenIssuer,
    logins: RateLimiter,
    clients: Mapping[str, SecretStr],
    form: TokenForm,
) -> TokenPair | ServiceToken:
    """The token endpoint: dispatch on ``grant_type`` (the form guarantees its fields)."""
    if form.grant_type == "client_credentials":
        return await login_service_client(
            passwords=passwords,
            tokens=tokens,
            clients=clients,
            client_id=form.client_id or "",
            client_secret=form.client_secret or "",
        )
    return await login_with_password(
        session=session,
        passwords=passwords,
        tokens=tokens,
        logins=logins,
        email=form.username or "",
        password=form.password or "",
    )


async def refresh_session(
    *,
    session: AsyncSession,
    tokens: TokenIssuer,
    refresh_token: str,
) -> TokenPair:
    """Rotate a refresh token; a used one coming back revokes its whole family."""
    token_hash = hash_refresh_token(refresh_token)
    now = datetime.now(UTC)
    consumed = await refresh_token_repository.consume_refresh_token(
        session, token_hash=token_hash, now=now
    )
    if consumed is None:
        state = await refresh_token_repository.find_refresh_token(session, token_hash)
        if state is not None and state.used_at is not None:
            # Two holders of one token: the thief or the client may have the newer one.
            await refresh_token_repository.revoke_family(
                session, family_id=state.family_id, now=now
            )
            raise RefreshTokenReused
        raise InvalidRefreshToken
    user = await user_repository.get_user(session, consumed.user_id)
    if user is None:
        raise InvalidRefreshToken
    return await _start_pair(
        session=session,
        tokens=tokens,
        user_id=user.id,
        role=_role(user.role),
        family_id=consumed.family_id,
    )


async def logout(*, session: AsyncSession, principal: Principal, refresh_token: str) -> None:
    """End the session the refresh token belongs to (its whole family); idempotent."""
    state = await refresh_token_repository.find_refresh_token(
        session, hash_refresh_token(refresh_token)
    )
    if state is None or principal.is_service or str(state.user_id) != principal.subject:
        raise RefreshTokenNotFound
    await refresh_token_repository.revoke_family(
        session, family_id=state.family_id, now=datetime.now(UTC)
    )


async def purge_expired_refresh_tokens(*, session: AsyncSession, batch_size: int = 1000) -> int:
    """Delete one batch of expired refresh tokens; return how many went."""
    return await refresh_token_repository.delete_expired_refresh_tokens(
        session, now=datetime.now(UTC), batch_size=batch_size
    )
