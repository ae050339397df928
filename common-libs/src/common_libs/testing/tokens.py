"""Access tokens for the test suites of services that verify user-service's tokens.

A service's repository does not contain user-service; its tests stand in for the issuer with a
real Ed25519 key: real signed JWTs, and the matching JWKS to serve or to verify against.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from common_libs.auth import Role, StaticKeySource

__all__ = ["TestTokenIssuer"]


class TestTokenIssuer:
    """Sign access tokens the way user-service does (EdDSA, ``kid``, the fleet's claims)."""

    __test__ = False  # not a test class, despite its name

    def __init__(
        self, *, issuer: str = "fleet-user-service", audience: str = "fleet", kid: str = "test-key"
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid
        self._private_key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (what ``GET /auth/jwks`` answers)."""
        jwk = OKPAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def key_source(self) -> StaticKeySource:
        """A key source holding the public key, for a ``TokenVerifier``."""
        return StaticKeySource(self.jwks())

    def token(
        self,
        *,
        subject: str | None = None,
        role: Role = "customer",
        ttl_seconds: int = 300,
        **claims: Any,
    ) -> str:
        """A signed access token; ``claims`` override or add claims (``None`` removes one)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": subject or str(uuid.uuid4()),
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, self._private_key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, **kwargs: Any) -> dict[str, str]:
        """``Authorization: Bearer ...`` for a token made with :meth:`token`."""
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}
