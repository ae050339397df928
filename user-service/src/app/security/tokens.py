"""Access tokens (EdDSA JWTs with the fleet's claims) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from common_libs.auth import Role

from app.security.signing_keys import ALGORITHM, KeyRing

REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """A signed access token and its lifetime in seconds."""

    token: str
    expires_in: int


class TokenIssuer:
    """Sign access tokens with the key ring's current key; knows the lifetimes of both tokens."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._ttl = access_ttl_seconds
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    def issue_access_token(self, *, subject: str, role: Role) -> IssuedAccessToken:
        """Sign a token for ``subject`` (claims sub, role, iss, aud, iat, exp, jti)."""
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "role": role,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + timedelta(seconds=self._ttl),
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(
            claims, self._keys.private_key, algorithm=ALGORITHM, headers={"kid": self._keys.kid}
        )
        return IssuedAccessToken(token=token, expires_in=self._ttl)


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> bytes:
    """The SHA-256 digest stored instead of the token (it has 256 bits of entropy: no salt)."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).digest()
