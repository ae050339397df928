"""Another fleet service in miniature: it verifies access tokens with common-libs' verifier,
knowing nothing of user-service but the URL of its JWKS (``VERIFIER_JWKS_URL``).

    uvicorn tests.integration.verifier_app:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common_libs.auth import CurrentPrincipal, RemoteKeySource, TokenVerifier
from common_libs.http_client import create_http_client
from common_libs.problems import install_problem_handlers
from fastapi import FastAPI


def create_app() -> FastAPI:
    """A service with one authenticated route, ``GET /whoami``."""
    jwks_url = os.environ["VERIFIER_JWKS_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = create_http_client(base_url=jwks_url, timeout=3.0)
        app.state.token_verifier = TokenVerifier(
            RemoteKeySource(jwks_url, client=client),
            issuer="fleet-user-service",
            audience="fleet",
        )
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.subject, "role": principal.role}

    return app
