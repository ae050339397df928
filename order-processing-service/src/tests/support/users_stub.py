"""A stand-in for user-service at the HTTP boundary: the client-credentials grant and the JWKS.

Speaks the documented contract: ``POST /auth/token`` (form ``grant_type=client_credentials``,
``client_id``, ``client_secret``) answers ``200 {access_token, token_type: "bearer", expires_in}``
or a ``401`` problem (``urn:fleet:users:invalid-client-credentials``, as user-service answers);
``GET /auth/jwks`` publishes the issuer's public key.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs

from common_libs.problem_types import SERVICE_UNAVAILABLE, VALIDATION_FAILED
from common_libs.testing import TestTokenIssuer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.stub_problems import problem


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
            return problem(
                503,
                SERVICE_UNAVAILABLE.type,
                SERVICE_UNAVAILABLE.title,
                "down for the test",
                headers={"Retry-After": "1"},
            )
        form = parse_qs((await request.body()).decode())
        fields = {name: values[0] for name, values in form.items()}
        if fields.get("grant_type") != "client_credentials":
            error = {"loc": ["body", "grant_type"], "msg": "unsupported", "type": "literal_error"}
            return problem(
                422,
                VALIDATION_FAILED.type,
                VALIDATION_FAILED.title,
                "The request is not valid.",
                errors=[error],
            )
        if (fields.get("client_id"), fields.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return problem(
                401,
                "urn:fleet:users:invalid-client-credentials",
                "Invalid Client Credentials",
                "The client credentials are incorrect.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = self.issuer.token(
            role="service", subject=self.client_id, ttl_seconds=self.expires_in
        )
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
        )

    async def _jwks(self, request: Request) -> JSONResponse:
        return JSONResponse(self.issuer.jwks())
