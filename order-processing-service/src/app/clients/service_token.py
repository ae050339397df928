"""This service's own access token: user-service's client-credentials grant, cached."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from app.clients.resilience import Deadline, TransientError, retry_within

__all__ = ["ServiceCredentialsRefused", "ServiceTokenProvider", "TokenUnavailable"]

_logger = logging.getLogger(__name__)

# Renew this long before expiry at most (a fifth of the lifetime for short-lived tokens).
_MAX_RENEW_MARGIN_SECONDS = 30.0


class TokenUnavailable(TransientError):
    """user-service did not hand out a token (unreachable, slow, or an unexpected answer)."""


class ServiceCredentialsRefused(Exception):
    """user-service refused this service's client credentials (a configuration problem)."""


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int = Field(gt=0)


class ServiceTokenProvider:
    """A ``service`` token from the client-credentials grant, reused until shortly before expiry."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: SecretStr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, deadline: Deadline) -> str:
        """A valid token: the cached one, or a new one fetched within ``deadline``."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:
            # Another task may have fetched one while this one waited.
            if self._token is None or self._clock() >= self._renew_at:
                await retry_within(self._fetch, deadline=deadline)
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the callee refused it); the next ``get`` fetches a new one."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        requested_at = self._clock()
        try:
            response = await self._http.post("/auth/token", data=form)
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"user-service unreachable ({type(exc).__name__})") from exc
        if response.status_code in (400, 401, 403, 422):
            _logger.error(
                "user-service refused the client credentials of %s (%s)",
                self._client_id,
                response.status_code,
            )
            raise ServiceCredentialsRefused("user-service refused this service's credentials")
        if response.status_code != 200:
            raise TokenUnavailable(f"user-service answered {response.status_code}")
        try:
            answer = _TokenAnswer.model_validate_json(response.content)
        except ValidationError as exc:
            raise TokenUnavailable("user-service's token answer is not valid") from exc
        margin = min(_MAX_RENEW_MARGIN_SECONDS, answer.expires_in / 5)
        self._token = answer.access_token
        self._renew_at = requested_at + answer.expires_in - margin
