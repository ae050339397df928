"""Real signing keys and access tokens made with PyJWT, as user-service would issue them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

ISSUER = "https://users.test"
AUDIENCE = "fleet"

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key, its ``kid`` and the JWS algorithm it signs with."""

    kid: str
    algorithm: str
    private_key: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK entry of a JWKS."""
        public_key = self.private_key.public_key()
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def ed25519_key(kid: str) -> SigningKey:
    """A fresh Ed25519 key (EdDSA)."""
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


def rsa_key(kid: str) -> SigningKey:
    """A fresh 2048-bit RSA key (RS256)."""
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS document holding the public halves of ``keys``."""
    return {"keys": [key.public_jwk() for key in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid access-token claims; an override of ``None`` removes that claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "customer",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: SigningKey, payload: dict[str, Any] | None = None, **headers: Any) -> str:
    """Sign ``payload`` (default: valid claims) with ``key``; ``kid=None`` leaves the kid out."""
    header: dict[str, Any] = {"kid": key.kid, **headers}
    header = {name: value for name, value in header.items() if value is not None}
    algorithm = header.pop("alg", key.algorithm)
    return jwt.encode(
        payload if payload is not None else claims(),
        key.private_key,
        algorithm=algorithm,
        headers=header,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], *, hmac_secret: bytes | None) -> str:
    """Build a token by hand as an attacker would: unsigned, or HMAC-signed with ``hmac_secret``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_secret is None:
        return signing_input + "."
    signature = hmac.new(hmac_secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
