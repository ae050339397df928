"""``/auth``: tokens (password and client-credentials grants), refresh, logout, the JWKS."""

from __future__ import annotations

from typing import Annotated

from common_libs.problem_types import MALFORMED_REQUEST, SERVICE_UNAVAILABLE, VALIDATION_FAILED
from common_libs.problems import problem_responses
from common_libs.ratelimit import rate_limit_responses
from fastapi import APIRouter, Form, Response, status

from app.dependencies import (
    CURRENT_PRINCIPAL_PROBLEMS,
    AppSettings,
    CurrentPrincipal,
    DbSession,
    Keys,
    LoginLimiter,
    Passwords,
    Tokens,
)
from app.models.auth_models import Jwks, RefreshRequest, ServiceToken, TokenForm, TokenPair
from app.services import auth_manager
from app.services.errors import (
    InvalidClientCredentials,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenNotFound,
)

router = APIRouter(prefix="/auth", tags=["auth"])

_NO_STORE = {"Cache-Control": "no-store"}
_PROBLEMS = {
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`, with "
    '`error="invalid_token"` and an `error_description` when a token was sent).',
    404: "No such refresh token of the caller.",
}
# What every route here may answer besides its own: an unreadable or invalid body, and a lost
# database (503 with Retry-After).
_BODY_PROBLEMS = (MALFORMED_REQUEST, VALIDATION_FAILED, SERVICE_UNAVAILABLE)


@router.post(
    "/token",
    response_model=TokenPair | ServiceToken,
    responses=rate_limit_responses(
        problem_responses(
            *_BODY_PROBLEMS,
            InvalidCredentials,
            InvalidClientCredentials,
            descriptions={
                401: "Wrong credentials, one answer whether or not the account exists "
                "(`WWW-Authenticate: Bearer`); a password grant's says how many failed logins "
                "its username has left (`RateLimit`).",
            },
        ),
        401,
        description="Too many failed logins for this username in the current window (by "
        "default 5 per 60 s, whatever the client's address): every login of it, even with the "
        "right password, is refused until `Retry-After` seconds have passed.",
    ),
    summary="Log in (password grant) or get a service token (client-credentials grant)",
)
async def issue_token(
    form: Annotated[TokenForm, Form()],
    session: DbSession,
    passwords: Passwords,
    tokens: Tokens,
    logins: LoginLimiter,
    settings: AppSettings,
    response: Response,
) -> TokenPair | ServiceToken:
    """OAuth2 token endpoint (form-encoded); bad credentials all answer the same 401."""
    response.headers.update(_NO_STORE)
    return await auth_manager.grant_token(
        session=session,
        passwords=passwords,
        tokens=tokens,
        logins=logins,
        clients=settings.service_clients,
        form=form,
    )


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=problem_responses(
        *_BODY_PROBLEMS,
        InvalidRefreshToken,
        descriptions={
            401: "The refresh token is unknown, expired, revoked or used (a used one also "
            "revokes its family); log in again."
        },
    ),
    summary="Trade a refresh token for a new pair (the old one is used up)",
)
async def refresh_tokens(
    body: RefreshRequest, session: DbSession, tokens: Tokens, response: Response
) -> TokenPair:
    """Rotate the refresh token; replaying a used one revokes its whole family."""
    response.headers.update(_NO_STORE)
    return await auth_manager.refresh_session(
        session=session, tokens=tokens, refresh_token=body.refresh_token
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        *_BODY_PROBLEMS,
        *CURRENT_PRINCIPAL_PROBLEMS,
        RefreshTokenNotFound,
        descriptions=_PROBLEMS,
    ),
    summary="Revoke a refresh token of the caller (and the tokens rotated from the same login)",
)
async def logout(body: RefreshRequest, session: DbSession, principal: CurrentPrincipal) -> None:
    """End the session the refresh token belongs to."""
    await auth_manager.logout(
        session=session, principal=principal, refresh_token=body.refresh_token
    )


@router.get("/jwks", response_model=Jwks, summary="The public keys that verify access tokens")
async def get_jwks(keys: Keys, response: Response) -> Jwks:
    """The JSON Web Key Set: the current key and previous ones whose tokens may be unexpired."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return Jwks.model_validate(keys.jwks())
