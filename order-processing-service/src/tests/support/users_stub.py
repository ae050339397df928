"""A stand-in for user-service at the HTTP boundary: the client-credentials grant and the JWKS.

Speaks the documented contract: ``POST /auth/token`` (form ``grant_type=client_credentials``,
``client_id``, ``client_secret``) answers ``200 {access_token, token_type: "bearer", expires_in}``
or a ``401`` problem; ``GET /auth/jwks`` publishes the issuer's public key.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs

from common_libs.testing import TestTokenIssuer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class UsersStub:
    """The token issuer, with a switch to make the token endpoint fail or hang."""

    def __init__(
        self, issuer: TestTokenIssuer, *, client_id: str, client_secret: str, expires_in: int = 300
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.token_requests = 0
        self.failing = False
        self.hang_seconds = 0.0
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/auth/token", self._token, methods=["POST"]),
                Route("/auth/jwks", self._jwks, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Back to normal behaviour."""
        with self._lock:
            self.failing = False
            self.hang_seconds = 0.0

    async def _token(self, request: Request) -> JSONResponse:
        with self._lock:
            self.token_requests += 1
            failing, hang = self.failing, self.hang_seconds
        if hang:
            await asyncio.sleep(hang)
        if failing:
            return _problem(503, "Service Unavailable", "down for the test")
        form = parse_qs((await request.body()).decode())
        fields = {name: values[0] for name, values in form.items()}
        if fields.get("grant_type") != "client_credentials":
            return _problem(400, "Bad Request", "unsupported grant_type")
        if (fields.get("client_id"), fields.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _problem(401, "Unauthorized", "invalid client credentials")
        token = self.issuer.token(
            role="service", subject=self.client_id, ttl_seconds=self.expires_in
        )
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
        )

    async def _jwks(self, request: Request) -> JSONResponse:
        return JSONResponse(self.issuer.jwks())
