"""The Ed25519 keys that sign access tokens, and the JWKS that publishes their public halves.

The current private key comes from configuration (a PKCS#8 PEM). In local runs without one, it is
read from a file, or generated there once. Public keys of previous signing keys stay published,
and trusted by this service's own verifier, until the tokens they signed have expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from app.config import Settings

ALGORITHM = "EdDSA"
_PUBLIC_PEM_BLOCK = re.compile(
    rb"-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s]+?-----END PUBLIC KEY-----"
)
_logger = logging.getLogger(__name__)


class SigningKeyError(RuntimeError):
    """A configured key cannot be used (the message never contains key material)."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One published verification key: its id, its JWK and the PyJWT key built from it."""

    kid: str
    jwk: dict[str, str]
    pyjwk: jwt.PyJWK


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The JWK of a public key, with ``kid`` (its RFC 7638 thumbprint), ``alg`` and ``use``."""
    raw: dict[str, Any] = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    required = {name: str(raw[name]) for name in ("crv", "kty", "x")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    return {**required, "kid": thumbprint.decode("ascii"), "alg": ALGORITHM, "use": "sig"}


def _public_key(public_key: Ed25519PublicKey) -> PublicKey:
    jwk = public_jwk(public_key)
    return PublicKey(kid=jwk["kid"], jwk=jwk, pyjwk=jwt.PyJWK.from_dict(jwk))


class KeyRing:
    """The current signing key and the previous public keys still published.

    It is also the ``KeySource`` of the service's own ``TokenVerifier``: the issuer verifies its
    tokens with its own public keys, never over HTTP.
    """

    def __init__(
        self,
        *,
        private_key: Ed25519PrivateKey,
        previous_public_keys: Sequence[Ed25519PublicKey] = (),
        previous_keys_expire_at: datetime | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.private_key = private_key
        self.current = _public_key(private_key.public_key())
        self._previous = [
            key for key in map(_public_key, previous_public_keys) if key.kid != self.current.kid
        ]
        self._previous_expire_at = previous_keys_expire_at
        self._clock = clock

    @property
    def kid(self) -> str:
        """The id of the key that signs new tokens."""
        return self.current.kid

    def published_keys(self) -> list[PublicKey]:
        """The current key, then the previous ones whose tokens may still be unexpired."""
        if self._previous_expire_at is not None and self._clock() >= self._previous_expire_at:
            return [self.current]
        return [self.current, *self._previous]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set: public keys only."""
        return {"keys": [key.jwk for key in self.published_keys()]}

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """Return the published key with this id, or None (the ``KeySource`` protocol)."""
        for key in self.published_keys():
            if key.kid == kid:
                return key.pyjwk
        return None


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """Serialise a private key as an unencrypted PKCS#8 PEM."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """Serialise a public key as a SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes, *, source: str) -> Ed25519PrivateKey:
    """Parse a PKCS#8 PEM holding an Ed25519 private key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{source} is not an unencrypted PKCS#8 PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{source} is not an Ed25519 key")
    return key


def load_public_keys(pems: str | None) -> list[Ed25519PublicKey]:
    """Parse zero or more concatenated ``PUBLIC KEY`` PEM blocks of Ed25519 keys."""
    if not pems or not pems.strip():
        return []
    blocks = _PUBLIC_PEM_BLOCK.findall(pems.encode())
    if not blocks:
        raise SigningKeyError("USERS_PREVIOUS_PUBLIC_KEYS_PEM holds no PUBLIC KEY PEM block")
    keys = []
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise SigningKeyError("USERS_PREVIOUS_PUBLIC_KEYS_PEM holds an invalid key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError("USERS_PREVIOUS_PUBLIC_KEYS_PEM holds a key that is not Ed25519")
        keys.append(key)
    return keys


def read_or_create_key_file(path: Path) -> Ed25519PrivateKey:
    """Read the local signing key, generating it (mode 0600) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(private_key_pem(Ed25519PrivateKey.generate()))
        try:
            # link() is atomic and refuses to replace: when two processes start at once, both
            # end up reading the one key that won.
            os.link(temporary, path)
            _logger.info("generated a new signing key in %s", path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return load_private_key(path.read_bytes(), source=str(path))


def load_key_ring(settings: Settings) -> KeyRing:
    """Build the key ring from the settings (the PEM, else the local key file)."""
    if settings.signing_key_pem is not None:
        private_key = load_private_key(
            settings.signing_key_pem.get_secret_value().encode(), source="USERS_SIGNING_KEY_PEM"
        )
    elif settings.is_local:
        private_key = read_or_create_key_file(settings.signing_key_file)
    else:
        raise SigningKeyError("USERS_SIGNING_KEY_PEM is required in production")
    expire_at = None
    if settings.previous_keys_retired_at is not None:
        expire_at = settings.previous_keys_retired_at + timedelta(
            seconds=settings.access_token_ttl_seconds
        )
    ring = KeyRing(
        private_key=private_key,
        previous_public_keys=load_public_keys(settings.previous_public_keys_pem),
        previous_keys_expire_at=expire_at,
    )
    _logger.info("signing access tokens with key %s", ring.kid)
    return ring
