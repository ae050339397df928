"""get_principal, CurrentPrincipal and require_roles in a FastAPI app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from support.tokens import AUDIENCE, ISSUER, SigningKey, claims, jwks, mint

from common_libs.auth import (
    CurrentPrincipal,
    Principal,
    StaticKeySource,
    TokenVerifier,
    require_roles,
)
from common_libs.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers

AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
StaffPrincipal = Annotated[Principal, Depends(require_roles("admin", "service"))]


def build_app(signing_key: SigningKey) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = TokenVerifier(
        StaticKeySource(jwks(signing_key)), issuer=ISSUER, audience=AUDIENCE
    )

    @app.get("/users/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.subject, "role": principal.role}

    @app.get("/users")
    async def list_users(principal: AdminPrincipal) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.get("/inventory")
    async def inventory(principal: StaffPrincipal) -> dict[str, str]:
        return {"role": principal.role}

    return app


@pytest.fixture
async def client(ed25519_signing_key: SigningKey) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(build_app(ed25519_signing_key))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def bearer(key: SigningKey, role: str, sub: str = "user-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(key, claims(sub=sub, role=role))}"}


async def test_missing_token_answers_401_with_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/me")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"] == "urn:fleet:common:authentication-required"
    assert response.json()["detail"] == "A bearer access token is required."


async def test_other_authorization_scheme_answers_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/me", headers={"Authorization": "Basic dXNlcjpwdw=="})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_invalid_token_answers_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/me", headers={"Authorization": "Bearer not.a.token"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token is malformed."'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"
    assert response.json()["detail"] == "The access token is malformed."


async def test_expired_token_answers_401_that_says_invalid_token_and_expired(
    client: httpx.AsyncClient, ed25519_signing_key: SigningKey
) -> None:
    now = int(time.time())
    token = mint(ed25519_signing_key, claims(iat=now - 600, exp=now - 60))

    response = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert response.json()["type"] == "urn:fleet:common:token-expired"
    assert response.json()["title"] == "Token Expired"


async def test_valid_token_yields_the_current_principal(
    client: httpx.AsyncClient, ed25519_signing_key: SigningKey
) -> None:
    response = await client.get(
        "/users/me", headers=bearer(ed25519_signing_key, "customer", sub="user-7")
    )

    assert response.status_code == 200
    assert response.json() == {"sub": "user-7", "role": "customer"}


async def test_wrong_role_answers_403(
    client: httpx.AsyncClient, ed25519_signing_key: SigningKey
) -> None:
    response = await client.get("/users", headers=bearer(ed25519_signing_key, "customer"))

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", '
        'error_description="Your role may not perform this operation."'
    )
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.json()["detail"] == "Your role may not perform this operation."


async def test_required_role_answers_200(
    client: httpx.AsyncClient, ed25519_signing_key: SigningKey
) -> None:
    response = await client.get("/users", headers=bearer(ed25519_signing_key, "admin", "adm-1"))

    assert response.status_code == 200
    assert response.json() == {"sub": "adm-1"}


async def test_role_check_without_token_answers_401_not_403(client: httpx.AsyncClient) -> None:
    response = await client.get("/users")

    assert response.status_code == 401


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("service", 200), ("customer", 403)])
async def test_any_of_several_roles_is_admitted(
    client: httpx.AsyncClient, ed25519_signing_key: SigningKey, role: str, status: int
) -> None:
    response = await client.get("/inventory", headers=bearer(ed25519_signing_key, role))

    assert response.status_code == status
