"""A stub of user-service's public key endpoint (``GET /auth/jwks``) for service processes.

It serves the JWKS given in the ``STUB_JWKS`` environment variable (a test's ``TestTokenIssuer``).
Run: ``STUB_JWKS='{...}' python -m uvicorn tests.support.issuer_stub:app --port N``.
"""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

JWKS = json.loads(os.environ.get("STUB_JWKS", '{"keys": []}'))


async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(JWKS)


app = Starlette(routes=[Route("/auth/jwks", jwks)])
