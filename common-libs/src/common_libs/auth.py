"""JWT verification against the issuer's JWKS, and the FastAPI dependencies built on it.

Every service verifies access tokens itself with user-service's public keys; none calls the issuer
per request. Keys are cached; a token whose ``kid`` is unknown triggers one refetch, and refetches
are rate-limited so that random ``kid`` values cannot turn the verifier into a request amplifier.
A verifier given a deny list (the deleted accounts, :class:`common_libs.events.DeletedUsers`)
refuses the still-valid tokens of the subjects in it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError

from common_libs.errors import (
    AuthenticationRequired,
    InsufficientScope,
    InvalidToken,
    ServiceUnavailable,
    TokenExpired,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "CurrentPrincipal",
    "KeySource",
    "Principal",
    "RemoteKeySource",
    "Role",
    "StaticKeySource",
    "TokenVerifier",
    "get_principal",
    "require_roles",
]

Role = Literal["customer", "admin", "service"]
DEFAULT_ALGORITHMS: tuple[str, ...] = ("EdDSA", "RS256")
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]


class Principal(BaseModel):
    """Who is calling, as proven by a verified access token."""

    model_config = ConfigDict(frozen=True)

    subject: str
    role: Role
    token_id: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.role == "admin"

    @property
    def is_service(self) -> bool:
        """True for service-to-service tokens."""
        return self.role == "service"


class KeySource(Protocol):
    """Where a verifier finds the public key for a ``kid``."""

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """Return the key with this id, or None when there is none."""
        ...


def _parse_jwks(jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    for entry in jwks.get("keys", []):
        kid = entry.get("kid") if isinstance(entry, Mapping) else None
        if not isinstance(kid, str):
            continue
        try:
            keys[kid] = jwt.PyJWK.from_dict(dict(entry))
        except jwt.PyJWTError:
            # One key of an unsupported type must not hide the others.
            continue
    return keys


class StaticKeySource:
    """A fixed key set, for the issuer itself (which holds its own public keys)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = _parse_jwks(jwks)

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """Return the key with this id, or None."""
        return self._keys.get(kid)


class RemoteKeySource:
    """Keys fetched from a JWKS URL, cached for ``max_age`` seconds, refetched on an unknown kid."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        max_age: float = 300.0,
        min_refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._max_age = max_age
        self._min_refetch_interval = min_refetch_interval
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """Return the key with this id, fetching the JWKS when stale or when the kid is new."""
        if kid in self._keys and not self._is_stale():
            return self._keys[kid]
        async with self._lock:
            # Another task may have refreshed while this one waited for the lock.
            if (kid not in self._keys or self._is_stale()) and self._may_refetch():
                await self._refresh()
            return self._keys.get(kid)

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._max_age

    def _may_refetch(self) -> bool:
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self._min_refetch_interval
        )

    async def _refresh(self) -> None:
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            jwks = response.json()
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                raise ValueError("the answer is not a JSON Web Key Set")
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys:
                # Serve the cached keys while the issuer is unreachable; try again later.
                self._fetched_at = self._clock()
                return
            raise ServiceUnavailable(
                "The token issuer's keys cannot be fetched right now.", retry_after=5
            ) from exc
        self._keys = _parse_jwks(jwks)
        self._fetched_at = self._clock()


class TokenVerifier:
    """Verify access tokens: pinned algorithms, required claims, issuer and audience; and, with a
    ``deny_list``, that the subject's account was not deleted.

    The deny list is asked about every subject, service tokens' too: their subject is a client
    id, never the id of a deleted account, so it is never in it.

    The last ``cache_size`` tokens that passed are remembered (a client sends the same token
    with each request until it expires): the same token string again skips the parsing, the
    signature and the claims (about 0.2 ms of CPU for an EdDSA token), but not what can change
    since: it must not have expired (by ``clock``, with the leeway), its key must still be the
    one the key source hands out for its ``kid`` (a rotated or withdrawn key refuses it again),
    and its subject must not be in the deny list. A refused token is never remembered.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway: float = 0.0,
        deny_list: Container[str] | None = None,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._leeway = leeway
        self._deny_list = deny_list
        self._cache_size = cache_size
        self._clock = clock
        # token -> (principal, kid, the key that verified it, exp as a timestamp)
        self._verified: OrderedDict[str, tuple[Principal, str, jwt.PyJWK, float]] = OrderedDict()

    @property
    def deny_list(self) -> Container[str] | None:
        """The subjects refused whatever their tokens say (None: no deny list)."""
        return self._deny_list

    async def verify(self, token: str) -> Principal:
        """Return the principal a valid token proves, or raise :class:`TokenExpired` or
        :class:`InvalidToken` (401s whose challenge says which)."""
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, kid, key, expires = remembered
            if self._clock() >= expires + self._leeway:
                del self._verified[token]
                raise TokenExpired
            if await self._keys.get_key(kid) is key:
                self._verified.move_to_end(token)
                return self._admitted(principal)
            del self._verified[token]  # the key set changed: verify it from scratch
        principal, kid, key = await self._verify_new(token)
        admitted = self._admitted(principal)
        self._verified[token] = (principal, kid, key, principal.expires_at.timestamp())
        while len(self._verified) > self._cache_size:  # the least recently used goes
            self._verified.popitem(last=False)
        return admitted

    def _admitted(self, principal: Principal) -> Principal:
        if self._deny_list is not None and principal.subject in self._deny_list:
            raise InvalidToken("The account no longer exists.")
        return principal

    async def _verify_new(self, token: str) -> tuple[Principal, str, jwt.PyJWK]:
        """Check a token from scratch: the principal, the key id and the key that verified it."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("The access token is malformed.") from exc
        algorithm = header.get("alg")
        kid = header.get("kid")
        if algorithm not in self._algorithms:
            raise InvalidToken("The access token's algorithm is not accepted.")
        if not isinstance(kid, str):
            raise InvalidToken("The access token has no key id.")
        key = await self._keys.get_key(kid)
        if key is None or key.algorithm_name != algorithm:
            raise InvalidToken("The access token was not signed by a known key.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("The access token is invalid.") from exc
        try:
            principal = Principal.model_validate(
                {
                    "subject": claims["sub"],
                    "role": claims.get("role"),
                    "token_id": claims["jti"],
                    "expires_at": datetime.fromtimestamp(claims["exp"], tz=UTC),
                }
            )
        except ValidationError as exc:
            raise InvalidToken("The access token's claims are invalid.") from exc
        return principal, kid, key


_bearer = HTTPBearer(auto_error=False, description="An access token issued by user-service.")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request with the app's ``state.token_verifier``."""
    if credentials is None:
        raise AuthenticationRequired
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Make a dependency that admits only principals holding one of ``roles`` (else 403)."""
    allowed = frozenset(roles)

    async def check_role(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise InsufficientScope
        return principal

    return check_role
